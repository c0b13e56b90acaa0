"""How async code reaches the synchronous store: on a few threads of the store's own, never
on the event loop.

Calls queue up, and the store's threads take them in turn, those a Slack answer waits on
(``answer_within``) first. SQLite has one thread, which runs whatever has queued as one batch
under one commit (see ``bot.store.batch``). PostgreSQL has a couple, each running one call at
a time in its own transaction, but the ``Grouped`` calls queued together (sends' claims,
finishes and landings) in one, and the ``Checked`` ones (requests' records) in one.

Answers reach the event loop in groups, through a mailbox that asks for a wake-up only when
none is pending. With an executor (a wake-up per answer) and ten Postgres threads taking
turns at the GIL, a Postgres send cost about a fifth more CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from bot.store import Store
from bot.store.batch import BatchingStore, CallOutcome, Grouped, each_alone, group_kind
from bot.store.core import answer_pending

P = ParamSpec("P")
T = TypeVar("T")

# Calls run under one commit at most (a batch holds SQLite's write lock while it runs), and
# answers held back at most.
MAX_BATCH = 50

RunCalls = Callable[[Sequence[Callable[[], Any]]], list[CallOutcome]]


def store_calls(store: Store) -> StoreCalls:
    """The way to the store that suits its backend."""
    if isinstance(store, BatchingStore):
        return StoreCalls(
            store.run_batch, threads=store.workers, batch=MAX_BATCH, groups_only=store.groups_only
        )
    return StoreCalls(each_alone, threads=store.workers, batch=1)


class _Mailbox:
    """Answers for one event loop, delivered by as few wake-ups as it takes: a wake-up is
    asked for only when none is pending already."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._answers: list[tuple[asyncio.Future[Any], CallOutcome]] = []

    def post(self, answers: list[tuple[asyncio.Future[Any], CallOutcome]]) -> None:
        with self._lock:
            wake = not self._answers
            self._answers.extend(answers)
        if wake:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            answers, self._answers = self._answers, []
        for future, outcome in answers:
            if future.done():  # its caller stopped waiting
                continue
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome.value)


@dataclass(frozen=True)
class _Waiting:
    run: Callable[[], Any]
    mailbox: _Mailbox
    future: asyncio.Future[Any]
    urgent: bool


class StoreCalls:
    """``threads`` threads that each take up to ``batch`` queued calls at a time, urgent ones
    first, hand them to ``run_calls`` and post the outcomes to the callers' loops."""

    def __init__(
        self, run_calls: RunCalls, *, threads: int, batch: int, groups_only: bool = False
    ) -> None:
        self._run_calls = run_calls
        self._threads = threads
        self._batch = batch
        self._groups_only = groups_only
        self._ready = threading.Condition()
        self._urgent: deque[_Waiting] = deque()
        self._background: deque[_Waiting] = deque()
        self._mailboxes: dict[asyncio.AbstractEventLoop, _Mailbox] = {}
        self._started = self._closed = False

    async def run(self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``method(*args, **kwargs)`` on a store thread, in the caller's context (its
        ``answer_within``); a store method that is a ``Grouped`` form run alone (``RunAlone``)
        runs as that form, which may share a transaction with other calls."""
        form, store = getattr(method, "grouped_form", None), getattr(method, "__self__", None)
        if form is not None and store is not None:
            grouped: T = await self.call(form(store, *args, **kwargs))
            return grouped
        plain: T = await self.call(
            functools.partial(contextvars.copy_context().run, method, *args, **kwargs)
        )
        return plain

    async def call(self, run: Callable[[], Any]) -> Any:
        """``run()`` on a store thread; its value or its exception. A ``Grouped`` call that
        a Slack answer waits on runs alone, in its caller's context (its time limit)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        urgent = answer_pending()
        if urgent and isinstance(run, Grouped):
            run = functools.partial(contextvars.copy_context().run, run)
        with self._ready:
            if self._closed:  # as a shut-down executor says: nothing would ever answer
                raise RuntimeError("the store's threads have been closed")
            if not self._started:
                self._started = True
                for _ in range(self._threads):
                    threading.Thread(target=self._work, name="store", daemon=True).start()
            mailbox = self._mailboxes.get(loop) or self._mailboxes.setdefault(loop, _Mailbox(loop))
            line = self._urgent if urgent else self._background
            line.append(_Waiting(run, mailbox, future, urgent))
            self._ready.notify()
        return await future

    def close(self) -> None:
        """Let the calls queued so far finish; take no more."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _take(self, *, wait: bool) -> list[_Waiting]:
        """The next calls to run, urgent ones first. Without ``wait``, none if none are
        queued; with it, none only once closed and drained."""
        with self._ready:
            while wait and not (self._urgent or self._background or self._closed):
                self._ready.wait()
            taken: list[_Waiting] = []
            for line in (self._urgent, self._background):
                while line and len(taken) < self._batch and self._joins(taken, line[0]):
                    taken.append(line.popleft())
            return taken

    def _joins(self, taken: list[_Waiting], waiting: _Waiting) -> bool:
        """Whether ``waiting`` may run in one batch with ``taken``: any call may where every
        call shares a batch, only ``Grouped`` ones with each other, and ``Checked`` ones with
        each other, where only they do."""
        if not taken or not self._groups_only:
            return True
        kind = group_kind(taken[0].run)
        return kind is not None and group_kind(waiting.run) is kind

    def _work(self) -> None:
        """Run calls as they come, and post their answers in groups: when nothing more is
        queued, when ``MAX_BATCH`` answers wait, or when an urgent one does and no other
        urgent call is queued. A burst of /sms records is answered together, with one
        wake-up of the event loop instead of one each."""
        done: list[tuple[_Waiting, CallOutcome]] = []
        urgent = False
        while (taken := self._take(wait=not done)) or done:
            if taken:
                try:
                    outcomes = self._run_calls([waiting.run for waiting in taken])
                except BaseException as exc:  # a bug in the batch itself: all callers hear it
                    outcomes = [CallOutcome(error=exc) for _ in taken]
                done.extend(zip(taken, outcomes, strict=True))
                urgent = urgent or any(waiting.urgent for waiting in taken)
            # self._urgent is read without the lock: a stale answer moves a post by a call.
            if not taken or len(done) >= MAX_BATCH or (urgent and not self._urgent):
                self._post(done)
                done, urgent = [], False

    @staticmethod
    def _post(done: list[tuple[_Waiting, CallOutcome]]) -> None:
        by_mailbox: dict[_Mailbox, list[tuple[asyncio.Future[Any], CallOutcome]]] = {}
        for waiting, outcome in done:
            by_mailbox.setdefault(waiting.mailbox, []).append((waiting.future, outcome))
        for mailbox, answers in by_mailbox.items():
            mailbox.post(answers)
