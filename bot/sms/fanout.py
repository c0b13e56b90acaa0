"""Bounded, paced, retrying fan-out: one call per item, results in input order.

Paging a roster sends one SMS per member. Sending them one by one is slow in an incident;
sending them all at once trips 2Chat's per-account ``requests_per_minute`` limit and
answers 429. ``fan_out`` runs the calls with at most ``concurrency`` in flight, starts each
attempt only when the process-wide ``RatePacer`` grants a slot, and retries only errors that
are safe to retry (``TwoChatError.temporary``): a send that may already have reached 2Chat is
never repeated, because that would text the person twice. A 429 is not a failure: 2Chat did
nothing, so the call waits for budget again (the pacer holds every start meanwhile), for as
long as it takes.

Nothing here knows about Slack or the 2Chat client; the caller passes the call and a callback.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.errors import TwoChatError
from bot.sms.budget import Priority, RatePacer

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Sleep = Callable[[float], Awaitable[object]]
# Told each item's result as it finishes: (index, item, value or exception).
OnResult = Callable[[int, T, R | BaseException], Awaitable[None]]

# Retry jitter needs no secrecy: one generator for every fan-out, seeded once.
_JITTER = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """How temporary errors are retried: ``attempts`` tries in all, exponential full jitter.

    Full jitter (a uniform delay between 0 and the capped exponential ceiling) keeps many
    retries that failed together, e.g. on one 503, from all coming back at the same moment.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if not (self.base_delay >= 0 and self.max_delay >= 0):
            raise ValueError("base_delay and max_delay must not be negative")

    def ceiling(self, retry_number: int) -> float:
        """Upper bound of the delay before retry ``retry_number`` (0 for the first retry)."""
        if retry_number >= 64:  # 2**n overflows float long before this matters
            return self.max_delay
        return min(self.max_delay, self.base_delay * 2.0**retry_number)

    def delay(self, retry_number: int, rng: random.Random) -> float:
        """A jittered delay in ``[0, ceiling(retry_number)]``."""
        return rng.uniform(0.0, self.ceiling(retry_number))


async def fan_out(
    items: Sequence[T],
    call: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
    pacer: RatePacer,
    retry: RetryPolicy,
    on_result: OnResult[T, R] | None = None,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
    priority: Priority = Priority.SEND,
) -> list[R | BaseException]:
    """Run ``call(item)`` for every item; return each item's value or exception, in input order.

    * At most ``concurrency`` items are in progress at once (an item waiting to retry keeps
      its place, so a 429 storm does not let more calls pile in).
    * Every attempt, retries included, first awaits ``pacer.acquire(priority)``.
    * A 429 (``TwoChatError.rate_limited``) is tried again once the pacer allows, however
      many times it comes: it does not count against ``retry.attempts``.
    * A ``TwoChatError`` with ``temporary=True`` is retried after ``retry.delay`` (slept with
      ``sleep``) up to ``retry.attempts`` tries; any other exception, or the last temporary
      one, becomes the item's result. An item's failure never makes ``fan_out`` raise.
    * ``on_result(index, item, result)`` is awaited once per item as it finishes, one call at
      a time in completion order, from a separate task so a slow callback (a Slack message
      update) never delays sends. An exception from it is logged and does not stop the fan-out.
    * Cancelling ``fan_out`` cancels every call in progress and propagates.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if not items:
        return []
    run = _FanOut(items, call, pacer, retry, rng if rng is not None else _JITTER, sleep, priority)
    return await run.run(concurrency, on_result)


class _FanOut(Generic[T, R]):
    """One ``fan_out`` in progress: workers take the next item in turn, and a reporter hands
    each finished item to ``on_result``."""

    def __init__(
        self,
        items: Sequence[T],
        call: Callable[[T], Awaitable[R]],
        pacer: RatePacer,
        retry: RetryPolicy,
        rng: random.Random,
        sleep: Sleep,
        priority: Priority,
    ) -> None:
        self._priority = priority
        self._items = items
        self._call = call
        self._pacer = pacer
        self._retry = retry
        self._rng = rng
        self._sleep = sleep
        self._next = 0
        self._results: dict[int, R | BaseException] = {}
        self._finished: asyncio.Queue[int] = asyncio.Queue()

    async def run(
        self, concurrency: int, on_result: OnResult[T, R] | None
    ) -> list[R | BaseException]:
        """Start the workers and the reporter; every item's result once all have ended.
        A single item (most texts) needs neither: it is sent, then reported, in place."""
        if len(self._items) == 1:
            self._results[0] = await self._attempts(0, self._items[0])
            await self._report_one(0, on_result)
            return [self._results[0]]
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency, len(self._items))):
                    group.create_task(self._worker())
                group.create_task(self._report(on_result))
        except BaseExceptionGroup as failed:
            # Only a broken pacer or sleep gets here; show it as itself, not wrapped in a group.
            if len(failed.exceptions) == 1:
                raise failed.exceptions[0] from None
            raise
        return [self._results[index] for index in range(len(self._items))]

    async def _worker(self) -> None:
        """Take the next unstarted item, one at a time, until none is left."""
        while self._next < len(self._items):
            index = self._next
            self._next += 1
            self._results[index] = await self._attempts(index, self._items[index])
            self._finished.put_nowait(index)

    async def _attempts(self, index: int, item: T) -> R | BaseException:
        """Call until a result, a lasting error, or the last allowed temporary error."""
        attempt = 0
        while True:
            await self._pacer.acquire(self._priority)
            try:
                return await self._call(item)
            except TwoChatError as error:
                if error.rate_limited:
                    continue  # no budget after all: wait for it again
                attempt += 1
                if not error.temporary or attempt >= self._retry.attempts:
                    return error
                status = error.status
            except Exception as error:
                return error
            delay = self._retry.delay(attempt - 1, self._rng)
            logger.info(
                "fan-out item %d: temporary error (status %s), retry %d of %d in %.2f s",
                index,
                status,
                attempt,
                self._retry.attempts - 1,
                delay,
            )
            await self._sleep(delay)

    async def _report(self, on_result: OnResult[T, R] | None) -> None:
        """Hand results to ``on_result`` one at a time, off the workers' path."""
        for _ in range(len(self._items)):
            await self._report_one(await self._finished.get(), on_result)

    async def _report_one(self, index: int, on_result: OnResult[T, R] | None) -> None:
        if on_result is None:
            return
        try:
            await on_result(index, self._items[index], self._results[index])
        except Exception:
            logger.exception("fan-out on_result failed for item %d; continuing", index)
