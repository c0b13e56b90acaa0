"""An aiohttp server on 127.0.0.1 in a background thread, for stand-ins of remote APIs.

Running in its own thread and loop, a stand-in serves a separate app process as well as
sync and async tests in this one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web


class BackgroundServer:
    """Subclasses add routes in ``routes``; ``record`` and ``wait_until`` coordinate tests."""

    def __init__(self) -> None:
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._changed = threading.Condition()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            app = web.Application()
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        loop, runner = self._loop, self._runner
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def record(self, update: Callable[[], Any]) -> Any:
        """Apply a change to recorded state under the lock and wake up waiters."""
        with self._changed:
            result = update()
            self._changed.notify_all()
            return result

    def wait_until(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Block until ``condition()`` is truthy (re-checked on each change), or fail."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := condition()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self._changed.wait(remaining)
            return result
