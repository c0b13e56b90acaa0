"""How async code reaches the synchronous store: on threads of the store's own, never on
the event loop. PostgreSQL serves many calls at once (a pool of threads, one per
connection); SQLite serves one, so its calls queue for a single thread that runs whatever
has queued as one batch under one commit (see ``bot.store.batch``)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from bot.store import Store
from bot.store.batch import BatchingStore, CallOutcome

# Calls run under one commit at most: a batch holds SQLite's write lock while it runs.
MAX_BATCH = 50


class StoreCalls(Protocol):
    async def call(self, run: Callable[[], Any]) -> Any:
        """``run()`` on a store thread; its value or its exception."""
        ...

    def close(self) -> None:
        """Let the calls queued so far finish; take no more."""
        ...


def store_calls(store: Store) -> StoreCalls:
    """The way to the store that suits its backend."""
    if isinstance(store, BatchingStore):
        return BatchedCalls(store)
    return PooledCalls(store.workers)


class PooledCalls:
    """As many threads as the store serves calls at once; each call its own transaction."""

    def __init__(self, workers: int) -> None:
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="store")

    async def call(self, run: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, run)

    def close(self) -> None:
        self._threads.shutdown(wait=False)


@dataclass(frozen=True)
class _Waiting:
    run: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class BatchedCalls:
    """One thread that takes every call queued so far, up to ``MAX_BATCH``, and runs them as
    one batch: one commit, and one wake-up of each waiting event loop, for them all."""

    def __init__(self, store: BatchingStore) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    async def call(self, run: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._closed:  # as a shut-down executor says: nothing would ever answer
                raise RuntimeError("the store's thread has been closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="store", daemon=True)
                self._thread.start()
            self._queue.put(_Waiting(run, loop, future))
        return await future

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.put(None)

    def _work(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    waiting = self._queue.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:  # closed: what came before it is still answered
                    self._run(batch)
                    return
                batch.append(waiting)
            self._run(batch)

    def _run(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = self._store.run_batch([waiting.run for waiting in batch])
        except BaseException as exc:  # a bug in the batch itself: every caller hears of it
            outcomes = [CallOutcome(error=exc) for _ in batch]
        by_loop: defaultdict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], CallOutcome]]
        ]
        by_loop = defaultdict(list)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            by_loop[waiting.loop].append((waiting.future, outcome))
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                loop.call_soon_threadsafe(_answer, answers)


def _answer(answers: list[tuple[asyncio.Future[Any], CallOutcome]]) -> None:
    for future, outcome in answers:
        if future.done():  # its caller stopped waiting
            continue
        if outcome.error is not None:
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome.value)
