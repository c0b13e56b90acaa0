"""Store calls run together: what a backend that commits many calls at once takes and gives.

SQLite syncs its file at every commit, and that sync, not the SQL, is most of what a
transaction costs. Calls that queue up while one runs are run in one transaction, each in
a savepoint of its own, and committed once (``SqliteStore.run_batch``): a send's three
round trips share their syncs with every other send in flight.

PostgreSQL pays per transaction and per round trip rather than per sync: there, only
``Grouped`` calls (a send's claim, its finish, its outcome landed) share one, because they
read nothing before the commit, so a whole group goes out and comes back in one round trip;
and ``Checked`` calls (a request's record) share one with each other.
"""

from __future__ import annotations

import contextvars
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from inspect import Signature, signature
from types import MethodType
from typing import (
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    overload,
    runtime_checkable,
)

from bot.errors import CommitUnknown
from bot.store.tx import Tx

T = TypeVar("T")
S = TypeVar("S")
C = TypeVar("C")
P = ParamSpec("P")


@dataclass
class CallOutcome:
    """What one call of a batch came to once the batch was committed (or not)."""

    value: Any = None
    error: BaseException | None = None
    # Steps the call left for after the commit (``StoreCore._after_commit``).
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def settle(self) -> None:
        """Run the call's after-commit steps; the first that fails becomes its error."""
        steps, self.after_commit = self.after_commit, []
        for step in steps:
            try:
                step()
            except Exception as exc:  # it is the call's outcome
                self.value, self.error = None, exc
                return


class Grouped(Generic[T]):
    """A write that reads no answer before its commit, so it may share its transaction (and
    on PostgreSQL its round trip) with other such writes: ``queue`` queues its statements in
    the transaction it is handed and gives back how to read its answer once that committed.
    Called, it runs alone in a transaction of its own."""

    def __init__(
        self,
        queue: Callable[[Tx], Callable[[], T]],
        transaction: Callable[[], AbstractContextManager[Tx]],
    ) -> None:
        self.queue = queue
        self._transaction = transaction

    def __call__(self) -> T:
        with self._transaction() as tx:
            read = self.queue(tx)
        return read()


class Checked(ABC, Generic[T, C]):
    """A write that reads its answers before its commit, and may refuse there by raising,
    which rolls it back: a request's record (a claim taken, every recipient opted out, a
    limit). Several may share one transaction (``PostgresStore.run_batch``): all their locks
    taken first, in one statement and so in one order in every process; their statements
    out together, their answers back in one round trip, one commit. Their statements run in
    turn, so each reads what those before it wrote, as if each had run alone after them. A
    call that refuses rolls the group back, and each is then run again alone. It carries
    its caller's context (``answer_within``): it is run on a store thread, and a group
    takes the shortest time left among its calls.

    ``queue`` queues the statements in the transaction it is handed and gives back the
    check, which reads their answers before the commit and gives back what was checked
    (``C``); ``settle`` turns that into the call's value after the commit; ``unsettled``
    is told when the commit's fate is unknown."""

    def __init__(
        self,
        transaction: Callable[..., AbstractContextManager[Tx]],
        locks: Collection[str] = (),
        *,
        shares: bool = True,
    ) -> None:
        self.locks = locks
        self.context = contextvars.copy_context()
        # Whether it may share a transaction: one whose statements take long (a page to
        # hundreds) runs alone, so no ack waits for them.
        self.shares = shares
        self._transaction = transaction

    @abstractmethod
    def queue(self, tx: Tx) -> Callable[[], C]: ...

    @abstractmethod
    def settle(self, checked: C) -> T: ...

    @abstractmethod
    def unsettled(self, checked: C) -> None:
        """The commit of what was checked may or may not have happened."""

    def unknown(self, checked: C, unknown: CommitUnknown) -> BaseException:
        """The call's error when the fate of its commit is unknown: ``unknown``, once
        ``unsettled`` is told, or the error of telling it, if that fails."""
        try:
            self.unsettled(checked)
        except Exception as exc:  # it is the call's outcome
            return exc
        return unknown

    def __call__(self) -> T:
        """Run alone, in a transaction of its own, in its caller's context."""
        return self.context.run(self._alone)

    def _alone(self) -> T:
        checked: list[C] = []
        try:
            with self._transaction(write=True, locks=self.locks) as tx:
                checked.append(self.queue(tx)())
        except CommitUnknown as exc:
            if not checked:
                raise
            raise self.unknown(checked[0], exc)  # noqa: B904 (the CommitUnknown is its context)
        return self.settle(checked[0])


class RunAlone(Generic[S, P, T]):
    """A store method that is its grouped form (``Grouped`` or ``Checked``) run alone, in a
    transaction of its own, so that the form's parameters are written once:
    ``claim_send = RunAlone(claiming)``. Bound to a store, it carries the form as
    ``grouped_form``: the store's threads (``StoreCalls.run``) run the form in its stead,
    grouped with other calls."""

    def __init__(self, form: Callable[Concatenate[S, P], Grouped[T] | Checked[T, Any]]) -> None:
        def alone(store: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            return form(store, *args, **kwargs)()

        alone.__doc__, alone.__module__ = form.__doc__, form.__module__
        # Functions' attributes: the mark, and for ``help`` the form's parameters.
        setattr(alone, "grouped_form", form)  # noqa: B010
        shown = signature(form).replace(return_annotation=Signature.empty)
        setattr(alone, "__signature__", shown)  # noqa: B010
        self._alone = alone

    def __set_name__(self, owner: type, name: str) -> None:
        """Name the method as it is named in its class (for tracebacks and ``help``)."""
        self._alone.__name__, self._alone.__qualname__ = name, f"{owner.__qualname__}.{name}"

    @overload
    def __get__(self, store: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, store: S, owner: type | None = None) -> Callable[P, T]: ...

    def __get__(self, store: S | None, owner: type | None = None) -> Self | Callable[P, T]:
        # A bound method, as ``def`` gives: ``__self__`` is the store, and the function's
        # ``grouped_form`` shows through it.
        return self if store is None else MethodType(self._alone, store)


def group_kind(call: Callable[[], Any]) -> type | None:
    """The calls that may share a transaction with ``call`` where only groups share one
    (``BatchingStore.groups_only``): those of this kind; None for a call that may not."""
    if isinstance(call, Grouped):
        return Grouped
    return Checked if isinstance(call, Checked) and call.shares else None


def each_alone(calls: Sequence[Callable[[], Any]]) -> list[CallOutcome]:
    """Run calls in turn, each in its own transaction (a store that commits each alone)."""
    outcomes = []
    for run in calls:
        try:
            outcomes.append(CallOutcome(value=run()))
        except Exception as exc:  # it is the call's outcome
            outcomes.append(CallOutcome(error=exc))
    return outcomes


@runtime_checkable
class BatchingStore(Protocol):
    """A store whose calls are best run in batches."""

    # Whether only ``Grouped`` calls share a batch (PostgreSQL: any other call is taken on
    # its own, as its transaction may read, lock or wait) or every call does (SQLite).
    groups_only: bool

    def run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[CallOutcome]:
        """Run ``calls`` in order; each outcome is final: committed, or an error."""
        ...
