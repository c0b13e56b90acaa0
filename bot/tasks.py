"""Background work after Slack's ack, tracked so a shutdown can let it finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any

logger = logging.getLogger(__name__)

# How long work that waits for Slack's answers to go first may be held back.
ANSWERS_FIRST_FOR = 0.5
# How long no Slack request must be in hand before held work starts: answers given together
# (a batch of requests recorded at once) are followed within a few milliseconds by the
# requests of a burst that go on, which should not find every held send started ahead of
# them.
ANSWERS_QUIET_FOR = 0.005


class TaskRunner:
    """Spawns tasks, keeps a reference to each (so none is garbage-collected mid-send) and
    drains them on shutdown within a bounded time.

    Slack gives up on an answer after 3 seconds; a send can start a moment later. So the
    runner counts the Slack requests being answered (``answering``), and a task spawned
    ``after_answers`` starts once none has been for ``ANSWERS_QUIET_FOR``, or after
    ``ANSWERS_FIRST_FOR`` at most: in a burst of ``/sms`` the acks are not queued behind
    the sends they started.
    """

    def __init__(
        self, answers_first_for: float = ANSWERS_FIRST_FOR, quiet_for: float = ANSWERS_QUIET_FOR
    ) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.answers_first_for = answers_first_for
        self._quiet_for = quiet_for
        self._answering = 0
        self._quiet = asyncio.Event()  # set once no answer has been due for ``quiet_for``
        self._quiet.set()
        self._quiet_timer: asyncio.TimerHandle | None = None

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

    async def _after_answers(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if not self._quiet.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(self.answers_first_for):
                    await self._quiet.wait()
        return await coro

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, *, after_answers: bool = False
    ) -> asyncio.Task[Any]:
        if after_answers:
            coro = self._after_answers(coro)
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
