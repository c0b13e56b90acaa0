"""What every store query is built on: the backend hooks, the clock, the schema, row mapping.

A backend (SQLite or PostgreSQL) supplies transactions, locks and column types; everything
else is shared, so both behave alike. Every state change is one conditional
``UPDATE ... WHERE state IN (...)``, so of several concurrent deciders or workers exactly one
wins: that is what makes approvals and sends happen exactly once.

The API is synchronous and thread-safe; the async app calls it on a few threads of its own
(``bot.sending.roles.Db``), as many as the backend serves at once.
All times are timezone-aware UTC datetimes taken from the injected ``clock``, never from the
database server, so tests can move time and several processes agree on one notion of "now".

A call made while answering Slack runs under ``answer_within``: Slack gives up after three
seconds, so every wait it starts (for a connection, a lock, a statement) is cut to what is
left of the answer's budget, while background work keeps the backends' long waits.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import partial
from typing import Any, ClassVar, TypeVar

from bot.errors import StoreError
from bot.store.batch import Grouped
from bot.store.migrations import current_version, upgrade
from bot.store.records import NewRecipient, SendRecord, StoredRequest, utcnow
from bot.store.tx import Tx, placeholders, row_values, utc

REQUEST_COLUMNS = (
    "id",
    "kind",
    "sender",
    "channel_id",
    "thread_ts",
    "response_url",
    "from_name",
    "from_number",
    "text",
    "segments",
    "encoding",
    "state",
    "created_at",
    "updated_at",
    "expires_at",
    "decided_by",
    "decided_at",
    "decision_reason",
    "approval_channel",
    "approval_ts",
    "dedupe_key",
    "targets",
)
SEND_COLUMNS = (
    "id",
    "request_id",
    "number",
    "name",
    "state",
    "message_id",
    "error",
    "attempts",
    "claimed_at",
    "updated_at",
)
REQUEST_TIMES = frozenset({"created_at", "updated_at", "expires_at", "decided_at"})
_SEND_TIMES = frozenset({"claimed_at", "updated_at"})
_REQUEST_SELECT = ", ".join(f"r.{c}" for c in REQUEST_COLUMNS)
_SEND_SELECT = ", ".join(f"s.{c}" for c in SEND_COLUMNS)
T = TypeVar("T")

# The time.monotonic() by which the Slack request being answered needs the store's answer.
# A context variable, so it follows the call into the thread that runs it (sending.roles.Db)
# and stays out of every other task.
_ANSWER_BY: ContextVar[float | None] = ContextVar("sms_bridge_store_answer_by", default=None)


@contextmanager
def answer_within(seconds: float | None) -> Iterator[None]:
    """Bound every store wait started in this context to ``seconds`` from now, in total;
    ``None`` lifts the bound (work that outlives the answer, such as expiring a request
    whose caller gave up). Tasks started inside inherit it, so start background work after."""
    token = _ANSWER_BY.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _ANSWER_BY.reset(token)


def answer_pending() -> bool:
    """Whether a Slack request waits for this call's answer (``answer_within`` is in force)."""
    return _ANSWER_BY.get() is not None


def answer_by() -> float:
    """The time.monotonic() by which this call must be answered; infinity when none is."""
    by = _ANSWER_BY.get()
    return math.inf if by is None else by


def time_left() -> float | None:
    """Seconds left to answer the Slack request being served, or None outside one.

    Raises StoreError once the time is up: the caller has answered (or is answering) Slack
    that the database is unavailable, so nothing more should be started for it."""
    answer_by = _ANSWER_BY.get()
    if answer_by is None:
        return None
    left = answer_by - time.monotonic()
    if left <= 0:
        raise StoreError("the database did not answer in time")
    return left


class StoreCore(ABC):
    """The hooks a backend fills in, and the helpers the query mixins share."""

    # Column types filled into the migration templates.
    _dialect: ClassVar[dict[str, str]]

    # Names the database in messages, never with its password.
    target: str = "database"
    # How many calls the backend serves at once: the async side runs that many threads.
    workers: int = 1
    # Why the last write failed for a reason of the database's own (a full disk, an I/O
    # error, a read-only file), and when (time.monotonic); and when a write last committed.
    # Readiness reports it: reads alone would not notice that every request is refused.
    write_failure: tuple[str, float] | None = None
    wrote_at: float | None = None
    # Whether several app processes may use this database at once (and so must share
    # budgets, such as 2Chat's calls a minute, through it).
    shared: bool = False

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock

    def scrub(self, text: str) -> str:
        """``text`` fit for a log or a message: one line, no password."""
        return " ".join(text.split())

    def _after_commit(self, step: Callable[[], None]) -> None:
        """Run ``step`` once the transaction that just ended is durable: at once here, after
        the batch's commit where calls share one (``SqliteStore.run_batch``)."""
        step()

    def _grouped(self, queue: Callable[[Tx], Callable[[], T]]) -> Grouped[T]:
        """A write that may share a transaction with others (see ``Grouped``)."""
        return Grouped(queue, partial(self._transaction, write=True))

    # ---- backend hooks

    @abstractmethod
    def _transaction(
        self, *, write: bool, locks: Collection[str] = ()
    ) -> AbstractContextManager[Tx]:
        """One transaction, committed on success, rolled back on error. ``write`` lets SQLite
        take its write lock up front. ``locks`` are held from the start to the end, so that
        rate-limited inserts sharing a key are serialised across processes."""

    @abstractmethod
    def _lock_migrations(self, tx: Tx) -> None:
        """Serialise migrate() across processes for the rest of ``tx``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""

    # ---- clock and schema

    def now(self) -> datetime:
        """The store's clock (injectable in tests), so callers and the store agree on time."""
        return self._now()

    def _now(self) -> datetime:
        return utc(self._clock())

    def migrate(self) -> None:
        """Bring the schema to the latest version; safe to run from several processes at once."""
        with self._transaction(write=True) as tx:
            self._lock_migrations(tx)
            upgrade(tx, self._dialect, self._now)

    def schema_version(self) -> int:
        """The highest applied migration; open_store has already created the table."""
        with self._transaction(write=False) as tx:
            return current_version(tx)

    # ---- row mapping

    def _request_where(
        self, tx: Tx, where: str, params: Sequence[Any], *, order: str = "r.created_at, r.id"
    ) -> list[StoredRequest]:
        rows = tx.rows(
            f"SELECT {_REQUEST_SELECT} FROM requests r WHERE {where} ORDER BY {order}", params
        )
        requests = [row_values(row, REQUEST_COLUMNS, REQUEST_TIMES) for row in rows]
        recipients: dict[str, list[NewRecipient]] = {values["id"]: [] for values in requests}
        if recipients:  # one query for every request's recipients, not one per request
            ids = list(recipients)
            for request_id, number, name in tx.rows(
                "SELECT request_id, number, name FROM sends "
                f"WHERE request_id IN ({placeholders(len(ids))}) ORDER BY id",
                ids,
            ):
                recipients[request_id].append(NewRecipient(number, name))
        return [
            StoredRequest(**values, recipients=tuple(recipients[values["id"]]))
            for values in requests
        ]

    def _sends_where(self, tx: Tx, where: str, params: Sequence[Any]) -> list[SendRecord]:
        rows = tx.rows(f"SELECT {_SEND_SELECT} FROM sends s WHERE {where} ORDER BY s.id", params)
        return [SendRecord(**row_values(row, SEND_COLUMNS, _SEND_TIMES)) for row in rows]
