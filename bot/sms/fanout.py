"""Bounded, paced, retrying fan-out: one call per item, results in input order.

Paging a roster sends one SMS per member. Sending them one by one is slow in an incident;
sending them all at once trips 2Chat's per-account ``requests_per_minute`` limit and
answers 429. ``fan_out`` runs the calls with at most ``concurrency`` in flight, starts each
attempt only when the process-wide ``RatePacer`` grants a slot, and retries only errors that
are safe to retry (``TwoChatError.temporary``): a send that may already have reached 2Chat is
never repeated, because that would text the person twice.

Nothing here knows about Slack or the 2Chat client; the caller passes the call and a callback.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.core.model import POLL_FLOOR_SHARE, POLL_SHARE
from bot.errors import TwoChatError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]
# Told each item's result as it finishes: (index, item, value or exception).
OnResult = Callable[[int, T, R | BaseException], Awaitable[None]]

WINDOW_SECONDS = 60.0
DEFAULT_BURST = 5
# Shortest pause: float rounding can leave a wait of a few ulps that would not move the clock.
_MIN_PAUSE = 1e-6
# Retry jitter needs no secrecy: one generator for every fan-out, seeded once.
_JITTER = random.Random()


class RatePacer:
    """Paces call starts across the process so no 60 s window holds more than ``per_minute``.

    Two rules, both checked before every start:

    * a token bucket (capacity ``burst``, refilled at ``per_minute / 60`` per second) spreads
      starts evenly instead of spending the minute's budget in one burst;
    * a log of the last minute's starts enforces the hard cap: a bucket alone would allow
      ``burst + per_minute`` starts in a window, which is exactly the 429 we want to avoid.

    Sends (``acquire``) are served first come, first served. Reply polling shares the same
    2Chat account, so it shares the budget, but yields (``acquire_spare``): a poll starts
    while no send waits and while the last minute holds fewer than ``spare_share`` of the cap,
    so a page that comes right after a busy poll still finds the rest of the minute free.
    While sends wait, polls still get ``floor_share`` of the cap, queued with the sends, so
    the replies to a long page (its acks, its STOPs) are read while it is being sent.

    ``per_minute=None`` means unlimited: acquire never waits and starts are not recorded.
    ``clock`` and ``sleep`` are injectable so tests can drive time.
    """

    def __init__(
        self,
        per_minute: int | None,
        *,
        burst: int = DEFAULT_BURST,
        spare_share: float = POLL_SHARE,
        floor_share: float = POLL_FLOOR_SHARE,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        if not 0 < spare_share <= 1:
            raise ValueError(f"spare_share must be in (0, 1], not {spare_share}")
        if not 0 < floor_share <= spare_share:
            raise ValueError(f"floor_share must be in (0, spare_share], not {floor_share}")
        _check_rate(per_minute)
        self._spare_share = spare_share
        self._floor_share = floor_share
        self._spare_starts: deque[float] = deque()  # the last minute's spare starts
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._per_minute = per_minute
        self._tokens = float(self._capacity)
        self._refilled_at = clock()
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._sends_waiting = 0
        self._no_send_waiting = asyncio.Event()
        self._no_send_waiting.set()

    def __repr__(self) -> str:
        return f"RatePacer(per_minute={self._per_minute!r}, burst={self._burst})"

    @property
    def sends_waiting(self) -> int:
        """How many sends wait for a start right now (a metric)."""
        return self._sends_waiting

    @property
    def per_minute(self) -> int | None:
        """The current cap, or None when unlimited."""
        return self._per_minute

    @property
    def _capacity(self) -> int:
        # A burst larger than the cap could never be spent within the window anyway.
        return self._burst if self._per_minute is None else min(self._burst, self._per_minute)

    def set_rate(self, per_minute: int | None) -> None:
        """Change the cap at run time (e.g. once GET /open/info reports the account's limit).

        Tokens earned so far are kept (up to the new capacity) and starts already made still
        count against the new cap. Waiters re-check at once rather than sleeping out a wait
        computed for the old rate.
        """
        _check_rate(per_minute)
        now = self._clock()
        self._refill(now)
        if self._per_minute is None and per_minute is not None:
            self._tokens = float(min(self._burst, per_minute))
        self._per_minute = per_minute
        self._tokens = min(self._tokens, float(self._capacity))
        self._wake()

    def spare_per_minute(self) -> int | None:
        """The most starts in a minute at which ``acquire_spare`` still grants one more."""
        if self._per_minute is None:
            return None
        return max(1, int(self._per_minute * self._spare_share))

    def _wake(self) -> None:
        """Make every pausing waiter re-check the rules now."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def acquire(self) -> None:
        """Wait for a slot to start one call; the slot is spent when this returns. A send
        waiting here goes before every ``acquire_spare`` waiter."""
        if self._per_minute is None:
            return
        self._sends_waiting += 1
        self._no_send_waiting.clear()
        self._wake()  # a poll pausing with the lock held gives it up
        try:
            async with self._lock:
                while True:
                    now = self._clock()
                    wait = self._wait_needed(now, self._per_minute)
                    if wait <= 0:
                        self._spend(now)
                        return
                    await self._pause(max(wait, _MIN_PAUSE))
        finally:
            self._sends_waiting -= 1
            if not self._sends_waiting:
                self._no_send_waiting.set()

    async def acquire_spare(self) -> None:
        """A slot for work that can wait (reply polling): granted while no send waits and
        the last minute holds fewer than ``spare_per_minute()`` starts; while sends wait,
        only up to ``floor_per_minute()`` spare starts a minute, each in line with them."""
        while True:
            if self._sends_waiting:
                floor_wait = self._floor_wait(self._clock())
                if floor_wait <= 0:
                    await self.acquire()  # behind the sends already waiting, not before
                    self._spare_starts.append(self._clock())
                    return
                await self._pause(floor_wait, until=self._no_send_waiting)
                continue
            async with self._lock:
                while not self._sends_waiting:
                    now = self._clock()
                    cap = self.spare_per_minute()
                    wait = 0.0 if cap is None else self._wait_needed(now, cap)
                    if wait <= 0:
                        self._spend(now)
                        self._spare_starts.append(now)
                        return
                    await self._pause(max(wait, _MIN_PAUSE))

    def floor_per_minute(self) -> int | None:
        """The spare starts a minute that go ahead even while sends wait."""
        if self._per_minute is None:
            return None
        return max(1, int(self._per_minute * self._floor_share))

    def _floor_wait(self, now: float) -> float:
        """Seconds until a spare start fits under ``floor_per_minute()`` (0: now)."""
        floor = self.floor_per_minute()
        starts = self._spare_starts
        while starts and now - starts[0] >= WINDOW_SECONDS:
            starts.popleft()
        if floor is None or len(starts) < floor:
            return 0.0
        return max(WINDOW_SECONDS - (now - starts[-floor]), _MIN_PAUSE)

    def _spend(self, now: float) -> None:
        if self._per_minute is not None:
            self._tokens -= 1.0
            self._starts.append(now)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled_at)
        self._refilled_at = now
        if self._per_minute is not None:
            self._tokens = min(
                float(self._capacity), self._tokens + elapsed * self._per_minute / WINDOW_SECONDS
            )

    def _wait_needed(self, now: float, cap: int | None) -> float:
        """Seconds until both rules allow a start at ``now`` with at most ``cap`` starts in
        the window (0 when one may start now)."""
        self._refill(now)
        per_minute = self._per_minute
        if per_minute is None or cap is None:
            return 0.0
        starts = self._starts
        while starts and now - starts[0] >= WINDOW_SECONDS:
            starts.popleft()
        window_wait = 0.0
        if len(starts) >= cap:
            # The start `cap` back must leave the window before another may begin.
            # Compare the difference, as the pruning does: `start + 60` may round below it.
            age = now - starts[-cap]
            if age < WINDOW_SECONDS:
                window_wait = WINDOW_SECONDS - age
        bucket_wait = 0.0
        if self._tokens < 1.0:
            bucket_wait = (1.0 - self._tokens) * WINDOW_SECONDS / per_minute
        return max(window_wait, bucket_wait)

    async def _pause(self, delay: float, until: asyncio.Event | None = None) -> None:
        """Sleep ``delay`` seconds, or less if ``until`` is set meanwhile (by default: the
        rules changed, ``set_rate``)."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future((until or self._changed).wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()  # surface a failing sleep instead of spinning on it


def _check_rate(per_minute: int | None) -> None:
    if per_minute is not None and (isinstance(per_minute, bool) or per_minute < 1):
        raise ValueError(f"per_minute must be a positive integer or None, not {per_minute!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """How temporary errors are retried: ``attempts`` tries in all, exponential full jitter.

    Full jitter (a uniform delay between 0 and the capped exponential ceiling) keeps many
    retries that failed together, e.g. on one 429, from all coming back at the same moment.
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
) -> list[R | BaseException]:
    """Run ``call(item)`` for every item; return each item's value or exception, in input order.

    * At most ``concurrency`` items are in progress at once (an item waiting to retry keeps
      its place, so a 429 storm does not let more calls pile in).
    * Every attempt, retries included, first awaits ``pacer.acquire()``.
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
    run = _FanOut(items, call, pacer, retry, rng if rng is not None else _JITTER, sleep)
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
    ) -> None:
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
            await self._pacer.acquire()
            try:
                return await self._call(item)
            except TwoChatError as error:
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
