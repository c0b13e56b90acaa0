"""Background work after Slack's ack, tracked so a shutdown can let it finish."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

logger = logging.getLogger(__name__)

# How long work that waits for Slack's answers to go first may be held back.
ANSWERS_FIRST_FOR = 0.5
# How long no Slack request must be in hand before held work starts: answers given together
# (a batch of requests recorded at once) are followed within a few milliseconds by the
# requests of a burst that go on, which should not find every held send started ahead of
# them.
ANSWERS_QUIET_FOR = 0.005
# Held work that runs in turn (ad-hoc sends) then runs so many at a time, each keeping its
# place so long at most. Started as fast as their acks had been given, about three times
# faster than they could be done, hundreds of them shared the event loop and the acks still
# coming waited behind them all; a send that waits on 2Chat gives its place to the next.
IN_TURN_AT_ONCE = 10
IN_TURN_PLACE_FOR = 0.2
# The longest work in turn waits for a place; past it, it starts without one. In an overload
# longer than a burst, sends then get the CPU as before rather than fall further behind their
# acks (fewer at a time, they cost more each), and none waits past the lease its request was
# recorded under (``in_turn_wait_for_lease``): the sweeper would resume it as crashed. Two
# seconds, not one: on a slower host a burst of 1,000 /sms took longer than a second to ack,
# and the sends that timed out of the wait then started as fast as they had been acked.
IN_TURN_AT_MOST = 2.0


class Start(enum.Enum):
    """When spawned work starts: at once; once no Slack answer is due (``AFTER_ANSWERS``);
    or that, then in one of the places work in turn runs in (``IN_TURN``)."""

    AT_ONCE = enum.auto()
    AFTER_ANSWERS = enum.auto()
    IN_TURN = enum.auto()


def in_turn_wait_for_lease(lease: float) -> float:
    """How long work in turn may wait in all, given how long (s) the lease its request was
    recorded under lasts unrenewed: ``IN_TURN_AT_MOST``, or a third of the lease if less."""
    return min(IN_TURN_AT_MOST, lease / 3)


class TaskRunner:
    """Spawns tasks, keeps a reference to each (so none is garbage-collected mid-send) and
    drains them on shutdown within a bounded time.

    Slack gives up on an answer after 3 seconds; a send can start a moment later. So the
    runner counts the Slack requests being answered (``answering``), and a task spawned
    ``after_answers`` starts once none has been for ``ANSWERS_QUIET_FOR``, or after
    ``ANSWERS_FIRST_FOR`` at most: in a burst of ``/sms`` the acks are not queued behind
    the sends they started. A held task that runs ``in_turn`` then waits for one of
    ``IN_TURN_AT_ONCE`` places too; pages take none.
    """

    def __init__(
        self,
        answers_first_for: float = ANSWERS_FIRST_FOR,
        quiet_for: float = ANSWERS_QUIET_FOR,
        *,
        at_once: int = IN_TURN_AT_ONCE,
        place_for: float = IN_TURN_PLACE_FOR,
        in_turn_at_most: float = IN_TURN_AT_MOST,
    ) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.answers_first_for = answers_first_for
        self._quiet_for = quiet_for
        self._answering = 0
        self._quiet = asyncio.Event()  # set once no answer has been due for ``quiet_for``
        self._quiet.set()
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._places = asyncio.Semaphore(at_once)
        self._place_for = place_for
        self._in_turn_at_most = in_turn_at_most

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Around the handling of one Slack request, until its answer is given."""
        self._answering += 1
        self._quiet.clear()
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        try:
            yield
        finally:
            self._answering -= 1
            if not self._answering:
                loop = asyncio.get_running_loop()
                self._quiet_timer = loop.call_later(self._quiet_for, self._quiet.set)

    async def _after_answers(self, coro: Coroutine[Any, Any, Any], start: Start) -> Any:
        if self._quiet.is_set():
            return await coro
        spawned = asyncio.get_running_loop().time()
        with suppress(TimeoutError):
            async with asyncio.timeout(self.answers_first_for):
                await self._quiet.wait()
        if start is not Start.IN_TURN:
            return await coro
        async with self._place(spawned):
            return await coro

    @asynccontextmanager
    async def _place(self, spawned: float) -> AsyncIterator[None]:
        """One of the places work in turn runs in, given up when the block ends or after
        ``place_for``; none once the work has waited ``in_turn_at_most`` since ``spawned``."""
        placed = False
        with suppress(TimeoutError):
            async with asyncio.timeout_at(spawned + self._in_turn_at_most):
                placed = await self._places.acquire()
        if not placed:
            yield
            return
        given_up = False

        def give_up() -> None:
            nonlocal given_up
            if not given_up:
                given_up = True
                self._places.release()

        timer = asyncio.get_running_loop().call_later(self._place_for, give_up)
        try:
            yield
        finally:
            timer.cancel()
            give_up()

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        name: str,
        start: Start = Start.AT_ONCE,
    ) -> asyncio.Task[Any]:
        if start is not Start.AT_ONCE:
            coro = self._after_answers(coro, start)
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> bool:
        """Wait for every task, at most ``timeout`` seconds; True when all finished."""
        if not self._tasks:
            return True
        logger.info("waiting up to %.0fs for %d in-flight sends", timeout, len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            logger.warning("abandoning task %s at shutdown", task.get_name())
            task.cancel()
        return not pending
