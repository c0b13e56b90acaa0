"""Background work after Slack's ack, tracked so a shutdown can let it finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class TaskRunner:
    """Spawns tasks, keeps a reference to each (so none is garbage-collected mid-send) and
    drains them on shutdown within a bounded time."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
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
