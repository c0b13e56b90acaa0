"""The durable state of the bridge: requests, per-recipient sends, approvals, dedupe keys, leases.

One ``Store`` base class holds every query, so SQLite (one file, one process) and PostgreSQL
(several processes sharing a database) behave alike; the backends differ only in connection
handling, placeholders, column types and locking. Every state change is one conditional
``UPDATE ... WHERE state IN (...)`` so that, of several concurrent deciders or workers, exactly
one wins — that is what makes approvals and sends happen exactly once (SPEC §3, §4).

The API is synchronous and thread-safe; the async app calls it through ``asyncio.to_thread``.
All times are timezone-aware UTC datetimes taken from the injected ``clock``, never from the
database server, so tests can move time and several processes agree on one notion of "now".
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.errors import BridgeError, StoreError

__all__ = [
    "LATEST_SCHEMA_VERSION",
    "REQUEST_STATES",
    "SEND_STATES",
    "TRANSITIONS",
    "Acknowledgement",
    "InboundMessage",
    "NewRecipient",
    "NewRequest",
    "OptOut",
    "PostgresStore",
    "RateLimited",
    "RateLimits",
    "ReplyCursor",
    "RequestState",
    "SendRecord",
    "SendState",
    "SqliteStore",
    "Store",
    "StoredRequest",
    "open_store",
    "utcnow",
]

RequestState = Literal[
    "pending_approval", "approved", "rejected", "expired", "queued", "sending", "completed"
]
SendState = Literal["queued", "sending", "sent", "failed", "unknown"]

REQUEST_STATES: frozenset[str] = frozenset(get_args(RequestState))
SEND_STATES: frozenset[str] = frozenset(get_args(SendState))

# The request lifecycle; rejected, expired and completed are final.
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    "pending_approval": frozenset({"approved", "rejected", "expired"}),
    "approved": frozenset({"sending"}),
    "queued": frozenset({"sending"}),
    "sending": frozenset({"completed"}),
    "rejected": frozenset(),
    "expired": frozenset(),
    "completed": frozenset(),
}

# Requests in these states never reach 2Chat, so their sends do not count against rate limits.
_NOT_COUNTED: tuple[RequestState, ...] = ("rejected", "expired")
_RATE_WINDOW = timedelta(hours=1)
_KINDS = frozenset({"sms", "page"})


def utcnow() -> datetime:
    """The default clock: the current time, timezone-aware UTC."""
    return datetime.now(UTC)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class NewRecipient:
    """One destination of a request: an E.164 number and, when it came from a contact, its name."""

    number: str
    name: str | None = None


@dataclass(frozen=True)
class NewRequest:
    """What the app asks the store to record before anything is sent."""

    kind: str  # "sms" | "page"
    sender: str  # Slack user id of the requester
    channel_id: str
    from_name: str
    from_number: str
    recipients: tuple[NewRecipient, ...]
    text: str
    segments: int
    encoding: str
    approval_required: bool = False
    expires_at: datetime | None = None
    response_url: str | None = None
    thread_ts: str | None = None  # pages answer in the thread of the message that triggered them
    dedupe_key: str | None = None  # idempotency guard for Slack retries


@dataclass(frozen=True)
class StoredRequest:
    """A request as recorded, with its recipients in the order they were given."""

    id: str
    kind: str
    sender: str
    channel_id: str
    thread_ts: str | None
    response_url: str | None
    from_name: str
    from_number: str
    text: str
    segments: int
    encoding: str
    state: RequestState
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    approval_channel: str | None
    approval_ts: str | None
    dedupe_key: str | None
    recipients: tuple[NewRecipient, ...]


@dataclass(frozen=True)
class SendRecord:
    """One SMS to one recipient; ``sending`` means 2Chat may have been called."""

    id: int
    request_id: str
    number: str
    name: str | None
    state: SendState
    message_id: str | None
    error: str | None
    attempts: int
    claimed_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class RateLimits:
    """The §2 ``limits``; ``None`` means no limit of that kind."""

    per_sender_per_hour: int | None
    per_recipient_per_hour: int | None


class RateLimited(BridgeError):
    """A request would exceed a rate limit; ``retry_at`` is when it would fit again."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        self.retry_at = retry_at
        super().__init__(message)


@dataclass(frozen=True)
class OptOut:
    """A number that replied STOP: nothing is sent to it until it replies START."""

    number: str
    since: datetime
    via: str


@dataclass(frozen=True)
class Acknowledgement:
    """A page recipient who replied an ack word; ``at`` is when their reply was sent."""

    request_id: str
    number: str
    at: datetime
    via: str | None


@dataclass(frozen=True)
class ReplyCursor:
    """How far the reply poller has read one 2Chat conversation (channel + contact).

    ``marker`` is the conversation's last-message state as last seen, so an unchanged
    conversation costs no messages call; ``last_message_ts`` is the newest inbound relayed.
    """

    channel_uuid: str
    contact: str
    marker: str
    last_message_uuid: str | None
    last_message_ts: int | None


@dataclass(frozen=True)
class InboundMessage:
    """An inbound SMS the bridge has handled (relayed, dropped, or acted on), once."""

    uuid: str
    channel_uuid: str
    contact: str
    sent_at: datetime | None
    request_id: str | None
    kind: str  # reply | ack | stop | start | unknown
    seen_at: datetime


# --------------------------------------------------------------------------- schema

_REQUEST_COLUMNS = (
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
)
_SEND_COLUMNS = (
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
_REQUEST_TIMES = frozenset({"created_at", "updated_at", "expires_at", "decided_at"})
_SEND_TIMES = frozenset({"claimed_at", "updated_at"})
_REQUEST_SELECT = ", ".join(f"r.{c}" for c in _REQUEST_COLUMNS)
_SEND_SELECT = ", ".join(f"s.{c}" for c in _SEND_COLUMNS)


@dataclass(frozen=True)
class _Migration:
    """One schema step. ``{ts}`` and ``{serial_pk}`` are filled in per backend."""

    version: int
    description: str
    statements: tuple[str, ...]


# Append new steps; never edit one that has shipped.
_MIGRATIONS: tuple[_Migration, ...] = (
    _Migration(
        1,
        "requests, sends, dedupe keys, leases",
        (
            """CREATE TABLE requests (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                sender TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                thread_ts TEXT,
                response_url TEXT,
                from_name TEXT NOT NULL,
                from_number TEXT NOT NULL,
                text TEXT NOT NULL,
                segments INTEGER NOT NULL,
                encoding TEXT NOT NULL,
                state TEXT NOT NULL,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                expires_at {ts},
                decided_by TEXT,
                decided_at {ts},
                decision_reason TEXT,
                approval_channel TEXT,
                approval_ts TEXT,
                dedupe_key TEXT UNIQUE
            )""",
            "CREATE INDEX requests_state_expires ON requests (state, expires_at)",
            "CREATE INDEX requests_sender_created ON requests (sender, created_at)",
            """CREATE TABLE sends (
                id {serial_pk},
                request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
                number TEXT NOT NULL,
                name TEXT,
                state TEXT NOT NULL,
                message_id TEXT,
                error TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                claimed_at {ts},
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            )""",
            "CREATE INDEX sends_request ON sends (request_id, id)",
            "CREATE INDEX sends_number_created ON sends (number, created_at)",
            "CREATE INDEX sends_state_claimed ON sends (state, claimed_at)",
            """CREATE TABLE dedupe_keys (
                key TEXT PRIMARY KEY,
                claimed_at {ts} NOT NULL,
                expires_at {ts} NOT NULL
            )""",
            """CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at {ts} NOT NULL
            )""",
        ),
    ),
    _Migration(
        2,
        "reply cursors, inbound messages, opt-outs, acknowledgements",
        (
            """CREATE TABLE reply_cursors (
                channel_uuid TEXT NOT NULL,
                contact TEXT NOT NULL,
                marker TEXT NOT NULL,
                last_message_uuid TEXT,
                last_message_ts BIGINT,
                updated_at {ts} NOT NULL,
                PRIMARY KEY (channel_uuid, contact)
            )""",
            """CREATE TABLE inbound_messages (
                uuid TEXT PRIMARY KEY,
                channel_uuid TEXT NOT NULL,
                contact TEXT NOT NULL,
                sent_at {ts},
                request_id TEXT,
                kind TEXT NOT NULL,
                seen_at {ts} NOT NULL
            )""",
            """CREATE TABLE opt_outs (
                number TEXT PRIMARY KEY,
                since {ts} NOT NULL,
                via TEXT NOT NULL
            )""",
            """CREATE TABLE acknowledgements (
                request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
                number TEXT NOT NULL,
                at {ts} NOT NULL,
                via TEXT,
                PRIMARY KEY (request_id, number)
            )""",
            """CREATE TABLE ack_summaries (
                request_id TEXT PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
                channel_id TEXT NOT NULL,
                ts TEXT NOT NULL
            )""",
            "CREATE INDEX sends_message_id ON sends (message_id)",
        ),
    ),
)
LATEST_SCHEMA_VERSION = _MIGRATIONS[-1].version


# --------------------------------------------------------------------------- helpers


def _utc(value: datetime) -> datetime:
    """Normalise to UTC; a naive datetime is a bug (its zone is a guess), so refuse it."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware times")
    return value.astimezone(UTC)


def _from_db_time(value: Any) -> datetime | None:
    """Read a time column: ISO text from SQLite, timestamptz from Postgres."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(str(value)))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat()


def _clock_time(value: datetime) -> str:
    """``14:05 UTC``, rounded up so that the user who waits until then is not refused again."""
    value = _utc(value)
    if value.second or value.microsecond:
        value = value.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return value.strftime("%H:%M UTC")


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


class _Tx(ABC):
    """One open transaction; SQL uses ``?`` placeholders, converted per backend."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], int]:
        """Run one statement: (rows it returned, rows it changed)."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.execute(sql, params)[0]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.execute(sql, params)[1]


# --------------------------------------------------------------------------- the shared store


class Store(ABC):
    """Every query of the bridge; subclasses supply connections, types and locks."""

    # Column types filled into the migration templates.
    _dialect: ClassVar[dict[str, str]]

    # Names the database in messages, never with its password.
    target: str = "database"

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock

    def scrub(self, text: str) -> str:
        """``text`` fit for a log or a message: one line, no password."""
        return " ".join(text.split())

    # ---- backend hooks

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[_Tx]:
        """One transaction, committed on success, rolled back on error. ``write`` lets SQLite
        take its write lock up front."""

    @abstractmethod
    def _lock_migrations(self, tx: _Tx) -> None:
        """Serialise migrate() across processes for the rest of ``tx``."""

    @abstractmethod
    def _lock_rate_keys(self, tx: _Tx, keys: Collection[str]) -> None:
        """Serialise rate-limited inserts that share a key, for the rest of ``tx``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""

    # ---- schema

    def now(self) -> datetime:
        """The store's clock (injectable in tests), so callers and the store agree on time."""
        return self._now()

    def _now(self) -> datetime:
        return _utc(self._clock())

    def migrate(self) -> None:
        """Bring the schema to the latest version; safe to run from several processes at once."""
        with self._transaction(write=True) as tx:
            self._lock_migrations(tx)
            tx.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "applied_at {ts} NOT NULL)".format(**self._dialect)
            )
            row = tx.one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            current = int(row[0]) if row else 0
            if current > LATEST_SCHEMA_VERSION:
                raise StoreError(
                    f"the database schema is at version {current}, newer than this "
                    f"sms-bridge knows ({LATEST_SCHEMA_VERSION}); upgrade sms-bridge"
                )
            for step in _MIGRATIONS:
                if step.version <= current:
                    continue
                for statement in step.statements:
                    tx.run(statement.format(**self._dialect))
                tx.run(
                    "INSERT INTO schema_migrations (version, description, applied_at) "
                    "VALUES (?, ?, ?)",
                    (step.version, step.description, self._now()),
                )

    def schema_version(self) -> int:
        """The highest applied migration; open_store has already created the table."""
        with self._transaction(write=False) as tx:
            row = tx.one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    # ---- requests

    def create_request(self, new: NewRequest, *, limits: RateLimits | None = None) -> StoredRequest:
        """Record a request and one queued send per recipient, atomically.

        With ``limits``, the counting and the insert happen under one lock per sender and
        recipient, so concurrent processes cannot together exceed a limit. A repeated
        ``dedupe_key`` returns the request already recorded (Slack retries), unlimited.
        """
        recipients = tuple(new.recipients)
        if new.kind not in _KINDS:
            raise ValueError(f"unknown request kind {new.kind!r}")
        if not recipients:
            raise ValueError("a request needs at least one recipient")
        expires_at = _utc(new.expires_at) if new.expires_at is not None else None
        now = self._now()
        with self._transaction(write=True) as tx:
            if limits is not None:
                keys: set[str] = set()
                if limits.per_sender_per_hour is not None:
                    keys.add(f"sms-bridge:sender:{new.sender}")
                if limits.per_recipient_per_hour is not None:
                    keys.update(f"sms-bridge:recipient:{r.number}" for r in recipients)
                self._lock_rate_keys(tx, keys)
            if new.dedupe_key is not None:
                existing = self._request_where(tx, "r.dedupe_key = ?", (new.dedupe_key,))
                if existing:
                    return existing[0]
            if limits is not None:
                self._check_limits(tx, new.sender, recipients, limits, now)
            request_id = uuid.uuid4().hex
            inserted = tx.rows(
                "INSERT INTO requests (id, kind, sender, channel_id, thread_ts, response_url, "
                "from_name, from_number, text, segments, encoding, state, created_at, "
                "updated_at, expires_at, dedupe_key) "
                f"VALUES ({_placeholders(16)}) "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                (
                    request_id,
                    new.kind,
                    new.sender,
                    new.channel_id,
                    new.thread_ts,
                    new.response_url,
                    new.from_name,
                    new.from_number,
                    new.text,
                    new.segments,
                    new.encoding,
                    "pending_approval" if new.approval_required else "queued",
                    now,
                    now,
                    expires_at,
                    new.dedupe_key,
                ),
            )
            if not inserted:  # a concurrent request with the same key committed first
                return self._request_where(tx, "r.dedupe_key = ?", (new.dedupe_key,))[0]
            for recipient in recipients:
                tx.run(
                    "INSERT INTO sends (request_id, number, name, state, attempts, "
                    "created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, ?, ?)",
                    (request_id, recipient.number, recipient.name, now, now),
                )
            return self._request_where(tx, "r.id = ?", (request_id,))[0]

    def _check_limits(
        self,
        tx: _Tx,
        sender: str,
        recipients: tuple[NewRecipient, ...],
        limits: RateLimits,
        now: datetime,
    ) -> None:
        """Raise RateLimited at the latest of the moments each exceeded limit frees up, so
        the user who comes back then is not refused again."""
        since = now - _RATE_WINDOW
        not_counted = _placeholders(len(_NOT_COUNTED))
        checks: list[tuple[str, int, str, Sequence[Any], int]] = []  # what, limit, where, ...
        if limits.per_sender_per_hour is not None:
            checks.append(
                (
                    f"{limits.per_sender_per_hour} SMS per hour per sender",
                    limits.per_sender_per_hour,
                    "r.sender = ? AND r.created_at > ?",
                    (sender, since),
                    len(recipients),
                )
            )
        if limits.per_recipient_per_hour is not None:
            for number, wanted in Counter(r.number for r in recipients).items():
                checks.append(
                    (
                        f"{limits.per_recipient_per_hour} SMS per hour to {number}",
                        limits.per_recipient_per_hour,
                        "s.number = ? AND s.created_at > ?",
                        (number, since),
                        wanted,
                    )
                )
        refusals: list[tuple[datetime, str]] = []
        for what, limit, where, params, wanted in checks:
            if wanted > limit:
                raise RateLimited(
                    f"rate limit: {what}, and this request alone has {wanted}; "
                    "send to fewer recipients",
                    now + _RATE_WINDOW,
                )
            times = tx.rows(
                "SELECT s.created_at FROM sends s JOIN requests r ON r.id = s.request_id "
                f"WHERE {where} AND r.state NOT IN ({not_counted}) ORDER BY s.created_at",
                (*params, *_NOT_COUNTED),
            )
            excess = len(times) + wanted - limit
            if excess > 0:
                # The window frees up when the excess-th oldest SMS turns an hour old.
                oldest = _from_db_time(times[excess - 1][0]) or now
                refusals.append((oldest + _RATE_WINDOW, what))
        if refusals:
            retry_at, what = max(refusals)
            raise RateLimited(
                f"rate limit: {what}; you can send again at {_clock_time(retry_at)}", retry_at
            )

    def get_request(self, request_id: str) -> StoredRequest | None:
        with self._transaction(write=False) as tx:
            found = self._request_where(tx, "r.id = ?", (request_id,))
        return found[0] if found else None

    def find_request_by_dedupe_key(self, key: str) -> StoredRequest | None:
        with self._transaction(write=False) as tx:
            found = self._request_where(tx, "r.dedupe_key = ?", (key,))
        return found[0] if found else None

    def requests_in_state(
        self, state: RequestState, *, updated_before: datetime | None = None
    ) -> list[StoredRequest]:
        """Requests left in ``state`` (e.g. approved but never started, after a crash)."""
        where, params = "r.state = ?", [state]
        if updated_before is not None:
            where += " AND r.updated_at < ?"
            params.append(_utc(updated_before))
        with self._transaction(write=False) as tx:
            return self._request_where(tx, where, params)

    def sends(self, request_id: str) -> list[SendRecord]:
        """The request's sends, in the order the recipients were given."""
        with self._transaction(write=False) as tx:
            return self._sends_where(tx, "s.request_id = ?", (request_id,))

    def get_send(self, send_id: int) -> SendRecord | None:
        with self._transaction(write=False) as tx:
            found = self._sends_where(tx, "s.id = ?", (send_id,))
        return found[0] if found else None

    def set_thread(self, request_id: str, channel_id: str, thread_ts: str) -> None:
        """Remember where the request message was posted: its thread is the record (§3)."""
        with self._transaction(write=True) as tx:
            tx.run(
                "UPDATE requests SET channel_id = ?, thread_ts = ?, updated_at = ? WHERE id = ?",
                (channel_id, thread_ts, self._now(), request_id),
            )

    def set_approval_message(self, request_id: str, channel_id: str, ts: str) -> None:
        """Remember the approval message, so its buttons can be removed on decision or expiry."""
        with self._transaction(write=True) as tx:
            tx.run(
                "UPDATE requests SET approval_channel = ?, approval_ts = ?, updated_at = ? "
                "WHERE id = ?",
                (channel_id, ts, self._now(), request_id),
            )

    # ---- state machine

    def transition(
        self,
        request_id: str,
        to_state: RequestState,
        *,
        from_states: Collection[RequestState],
        decided_by: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Move a request along one legal edge; True only for the single caller that did it."""
        sources: frozenset[str] = (
            frozenset({from_states}) if isinstance(from_states, str) else frozenset(from_states)
        )
        if to_state not in REQUEST_STATES:
            raise ValueError(f"unknown request state {to_state!r}")
        if not sources:
            raise ValueError("transition needs at least one from_state")
        for source in sorted(sources):
            if source not in REQUEST_STATES:
                raise ValueError(f"unknown request state {source!r}")
            if to_state not in TRANSITIONS[source]:  # type: ignore[index]
                raise ValueError(f"illegal transition {source} -> {to_state}")
        now = self._now()
        assignments = ["state = ?", "updated_at = ?"]
        params: list[Any] = [to_state, now]
        if decided_by is not None or reason is not None:
            assignments.append("decided_at = ?")
            params.append(now)
        if decided_by is not None:
            assignments.append("decided_by = ?")
            params.append(decided_by)
        if reason is not None:
            assignments.append("decision_reason = ?")
            params.append(reason)
        ordered = sorted(sources)
        with self._transaction(write=True) as tx:
            changed = tx.run(
                f"UPDATE requests SET {', '.join(assignments)} "
                f"WHERE id = ? AND state IN ({_placeholders(len(ordered))})",
                (*params, request_id, *ordered),
            )
        return changed == 1

    def claim_send(self, send_id: int) -> bool:
        """queued -> sending, recorded BEFORE 2Chat is called: a crash leaves it visible."""
        now = self._now()
        return self._update_send(
            "state = 'sending', claimed_at = ?, attempts = attempts + 1, updated_at = ?",
            (now, now),
            send_id,
            ("queued",),
        )

    def touch_send(self, send_id: int) -> bool:
        """Renew a sending claim before another attempt (a retry after a 429 or a refused
        connection): the claim is as fresh as the call, so a sweeper never takes a send that
        is still being retried for one left behind by a crash."""
        now = self._now()
        return self._update_send(
            "claimed_at = ?, attempts = attempts + 1, updated_at = ?",
            (now, now),
            send_id,
            ("sending",),
        )

    def finish_send(
        self,
        send_id: int,
        *,
        message_id: str | None = None,
        error: str | None = None,
        unknown: bool = False,
    ) -> bool:
        """sending -> sent (with 2Chat's message_id), failed (error) or unknown (unknown=True)."""
        if message_id is not None and (error is not None or unknown):
            raise ValueError("a send with a message_id has neither an error nor an unknown outcome")
        if unknown:
            state: SendState = "unknown"
        elif error is not None:
            state = "failed"
        else:
            state = "sent"
        return self._update_send(
            "state = ?, message_id = ?, error = ?, updated_at = ?",
            (state, message_id, error, self._now()),
            send_id,
            ("sending",),
        )

    def retry_send(self, send_id: int) -> bool:
        """unknown|failed -> queued, for a person's explicit Retry; the old outcome is cleared."""
        return self._update_send(
            "state = 'queued', message_id = NULL, error = NULL, claimed_at = NULL, updated_at = ?",
            (self._now(),),
            send_id,
            ("unknown", "failed"),
        )

    def mark_unknown(self, send_id: int, reason: str) -> bool:
        """sending -> unknown for a send abandoned by a crash; only one sweeper wins."""
        return self._update_send(
            "state = 'unknown', error = ?, updated_at = ?",
            (reason, self._now()),
            send_id,
            ("sending",),
        )

    def stale_sends(self, claimed_before: datetime) -> list[SendRecord]:
        """Sends still ``sending`` since before ``claimed_before``: their process likely died."""
        with self._transaction(write=False) as tx:
            return self._sends_where(
                tx, "s.state = 'sending' AND s.claimed_at < ?", (_utc(claimed_before),)
            )

    def complete_request_if_done(self, request_id: str) -> bool:
        """sending -> completed once no send is queued or sending; True for one caller only."""
        with self._transaction(write=True) as tx:
            changed = tx.run(
                "UPDATE requests SET state = 'completed', updated_at = ? "
                "WHERE id = ? AND state = 'sending' AND NOT EXISTS ("
                "SELECT 1 FROM sends WHERE request_id = ? AND state IN ('queued', 'sending'))",
                (self._now(), request_id, request_id),
            )
        return changed == 1

    def expired_approvals(self) -> list[StoredRequest]:
        """Pending approvals whose time is up, oldest deadline first."""
        with self._transaction(write=False) as tx:
            return self._request_where(
                tx,
                "r.state = 'pending_approval' AND r.expires_at IS NOT NULL AND r.expires_at <= ?",
                (self._now(),),
                order="r.expires_at, r.created_at",
            )

    # ---- dedupe keys and leases

    def claim_key(self, key: str, ttl: timedelta) -> bool:
        """True for the first claimer of ``key`` (or the first after it expired), else False."""
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        now = self._now()
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO dedupe_keys (key, claimed_at, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET claimed_at = excluded.claimed_at, "
                "expires_at = excluded.expires_at WHERE dedupe_keys.expires_at <= ? "
                "RETURNING key",
                (key, now, now + ttl, now),
            )
        return bool(won)

    def purge_keys(self) -> int:
        """Delete expired dedupe keys (housekeeping for a sweeper); returns how many."""
        with self._transaction(write=True) as tx:
            return tx.run("DELETE FROM dedupe_keys WHERE expires_at <= ?", (self._now(),))

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew the lease ``name``: one active reply poller or sweeper across processes."""
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        now = self._now()
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE leases.expires_at <= ? OR leases.holder = excluded.holder "
                "RETURNING name",
                (name, holder, now + ttl, now),
            )
        return bool(won)

    def release_lease(self, name: str, holder: str) -> bool:
        """Give up a lease at shutdown so another process need not wait for it to expire."""
        with self._transaction(write=True) as tx:
            return tx.run("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)) == 1

    # ---- replies: what the reply poller reads and remembers

    def texted_since(self, since: datetime) -> dict[str, frozenset[str]]:
        """from_number -> the numbers it texted (2Chat was called) since ``since``; empty when
        nothing was sent in the reply window, which is when the poller stays quiet."""
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT DISTINCT r.from_number, s.number FROM sends s "
                "JOIN requests r ON r.id = s.request_id "
                "WHERE s.state IN ('sent', 'unknown') AND s.claimed_at >= ?",
                (_utc(since),),
            )
        found: dict[str, set[str]] = {}
        for from_number, number in rows:
            found.setdefault(from_number, set()).add(number)
        return {key: frozenset(numbers) for key, numbers in found.items()}

    def latest_request_to(
        self, number: str, from_number: str, *, since: datetime, until: datetime
    ) -> StoredRequest | None:
        """The request whose SMS to ``number`` from ``from_number`` went out last within
        [since, until]: the thread a reply from that number belongs in."""
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT s.request_id FROM sends s JOIN requests r ON r.id = s.request_id "
                "WHERE s.number = ? AND r.from_number = ? AND s.state IN ('sent', 'unknown') "
                "AND s.claimed_at >= ? AND s.claimed_at <= ? "
                "ORDER BY s.claimed_at DESC, s.id DESC LIMIT 1",
                (number, from_number, _utc(since), _utc(until)),
            )
            found = self._request_where(tx, "r.id = ?", (row[0],)) if row else []
        return found[0] if found else None

    def reply_cursor(self, channel_uuid: str, contact: str) -> ReplyCursor | None:
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT channel_uuid, contact, marker, last_message_uuid, last_message_ts "
                "FROM reply_cursors WHERE channel_uuid = ? AND contact = ?",
                (channel_uuid, contact),
            )
        if row is None:
            return None
        ts = None if row[4] is None else int(row[4])
        return ReplyCursor(row[0], row[1], row[2], row[3], ts)

    def save_reply_cursor(self, cursor: ReplyCursor) -> None:
        """Remember how far a conversation was read (one row per channel and contact)."""
        with self._transaction(write=True) as tx:
            tx.run(
                "INSERT INTO reply_cursors (channel_uuid, contact, marker, last_message_uuid, "
                "last_message_ts, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel_uuid, contact) DO UPDATE SET marker = excluded.marker, "
                "last_message_uuid = excluded.last_message_uuid, "
                "last_message_ts = excluded.last_message_ts, updated_at = excluded.updated_at",
                (
                    cursor.channel_uuid,
                    cursor.contact,
                    cursor.marker,
                    cursor.last_message_uuid,
                    cursor.last_message_ts,
                    self._now(),
                ),
            )

    def claim_inbound(
        self,
        uuid: str,
        channel_uuid: str,
        contact: str,
        *,
        sent_at: datetime | None,
        request_id: str | None,
        kind: str,
    ) -> bool:
        """Record an inbound SMS as handled; True for the first caller only, so no reply is
        ever posted twice, whichever process or poll sees it."""
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO inbound_messages (uuid, channel_uuid, contact, sent_at, "
                "request_id, kind, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (uuid) DO NOTHING RETURNING uuid",
                (
                    uuid,
                    channel_uuid,
                    contact,
                    None if sent_at is None else _utc(sent_at),
                    request_id,
                    kind,
                    self._now(),
                ),
            )
        return bool(won)

    def inbound_message(self, uuid: str) -> InboundMessage | None:
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT uuid, channel_uuid, contact, sent_at, request_id, kind, seen_at "
                "FROM inbound_messages WHERE uuid = ?",
                (uuid,),
            )
        if row is None:
            return None
        seen_at = _from_db_time(row[6])
        assert seen_at is not None
        return InboundMessage(
            row[0], row[1], row[2], _from_db_time(row[3]), row[4], row[5], seen_at
        )

    # ---- opt-outs

    def opt_out(self, number: str, via: str) -> bool:
        """Put a number on the opt-out list; True when it was not on it already."""
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO opt_outs (number, since, via) VALUES (?, ?, ?) "
                "ON CONFLICT (number) DO NOTHING RETURNING number",
                (number, self._now(), via),
            )
        return bool(won)

    def opt_in(self, number: str) -> bool:
        """Take a number off the opt-out list (it replied START); True when it was on it."""
        with self._transaction(write=True) as tx:
            return tx.run("DELETE FROM opt_outs WHERE number = ?", (number,)) == 1

    def opt_outs(self) -> list[OptOut]:
        """Every opted-out number, longest-standing first."""
        with self._transaction(write=False) as tx:
            rows = tx.rows("SELECT number, since, via FROM opt_outs ORDER BY since, number")
        return [
            OptOut(number, _from_db_time(since) or self._now(), via) for number, since, via in rows
        ]

    def opted_out_numbers(self) -> frozenset[str]:
        """The opted-out numbers, as data for the send-time checks."""
        with self._transaction(write=False) as tx:
            return frozenset(number for (number,) in tx.rows("SELECT number FROM opt_outs"))

    # ---- acknowledgements (pages)

    def acknowledge(
        self, request_id: str, number: str, at: datetime, via: str | None = None
    ) -> bool:
        """Mark a page recipient as having acknowledged; True for the first ack only."""
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO acknowledgements (request_id, number, at, via) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (request_id, number) DO NOTHING RETURNING number",
                (request_id, number, _utc(at), via),
            )
        return bool(won)

    def acknowledgements(self, request_id: str) -> list[Acknowledgement]:
        """Who acknowledged a page, in the order they did."""
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT request_id, number, at, via FROM acknowledgements "
                "WHERE request_id = ? ORDER BY at, number",
                (request_id,),
            )
        return [
            Acknowledgement(rid, number, _from_db_time(at) or self._now(), via)
            for rid, number, at, via in rows
        ]

    def ack_summary(self, request_id: str) -> tuple[str, str] | None:
        """(channel, ts) of the page's acknowledgement summary reply, once posted."""
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT channel_id, ts FROM ack_summaries WHERE request_id = ?", (request_id,)
            )
        return (row[0], row[1]) if row else None

    def save_ack_summary(self, request_id: str, channel_id: str, ts: str) -> bool:
        """Remember the summary reply so later acks edit it; False if one was already saved."""
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO ack_summaries (request_id, channel_id, ts) VALUES (?, ?, ?) "
                "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
                (request_id, channel_id, ts),
            )
        return bool(won)

    # ---- lookups for App Home and /sms status

    def recent_requests(self, sender: str, limit: int = 10) -> list[StoredRequest]:
        """A user's latest requests, newest first."""
        with self._transaction(write=False) as tx:
            ids = tx.rows(
                "SELECT id FROM requests WHERE sender = ? ORDER BY created_at DESC, id DESC "
                "LIMIT ?",
                (sender, limit),
            )
            found = [self._request_where(tx, "r.id = ?", (rid,)) for (rid,) in ids]
        return [request[0] for request in found if request]

    def send_by_message_id(self, message_id: str) -> SendRecord | None:
        """The send 2Chat gave ``message_id``, if this bridge made it."""
        with self._transaction(write=False) as tx:
            found = self._sends_where(tx, "s.message_id = ?", (message_id,))
        return found[-1] if found else None

    # ---- audit

    def audit_rows(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """One row per send with its request (a request without sends gets one row), oldest
        first; values are JSON-ready (ISO-8601 UTC times). The response_url is left out: it
        lets anyone holding it post into the requester's conversation."""
        where, params = "", []
        if since is not None:
            where, params = "WHERE r.created_at >= ?", [_utc(since)]
        request_cols = [c for c in _REQUEST_COLUMNS if c not in ("id", "state", "response_url")]
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT r.id, r.state, "
                + ", ".join(f"r.{c}" for c in request_cols)
                + ", s.id, s.number, s.name, s.state, s.message_id, s.error, s.attempts, "
                "s.claimed_at, s.updated_at, "
                "(SELECT MIN(f.id) FROM sends f WHERE f.request_id = r.id) AS first_send "
                "FROM requests r LEFT JOIN sends s ON s.request_id = r.id "
                f"{where} ORDER BY r.created_at, first_send, r.id, s.id",
                params,
            )
        names = [
            "request_id",
            "request_state",
            *request_cols,
            "send_id",
            "number",
            "name",
            "send_state",
            "message_id",
            "error",
            "attempts",
            "claimed_at",
            "send_updated_at",
        ]
        times = {*_REQUEST_TIMES, "claimed_at", "send_updated_at"}
        out: list[dict[str, Any]] = []
        for row in rows:
            record = dict(zip(names, row[:-1], strict=True))
            for name in times:
                record[name] = _iso(_from_db_time(record[name]))
            out.append(record)
        return out

    # ---- row mapping

    def _request_where(
        self, tx: _Tx, where: str, params: Sequence[Any], *, order: str = "r.created_at, r.id"
    ) -> list[StoredRequest]:
        rows = tx.rows(
            f"SELECT {_REQUEST_SELECT} FROM requests r WHERE {where} ORDER BY {order}", params
        )
        found = []
        for row in rows:
            values = dict(zip(_REQUEST_COLUMNS, row, strict=True))
            for name in _REQUEST_TIMES:
                values[name] = _from_db_time(values[name])
            recipients = tuple(
                NewRecipient(number, name)
                for number, name in tx.rows(
                    "SELECT number, name FROM sends WHERE request_id = ? ORDER BY id",
                    (values["id"],),
                )
            )
            found.append(StoredRequest(**values, recipients=recipients))
        return found

    def _sends_where(self, tx: _Tx, where: str, params: Sequence[Any]) -> list[SendRecord]:
        rows = tx.rows(f"SELECT {_SEND_SELECT} FROM sends s WHERE {where} ORDER BY s.id", params)
        found = []
        for row in rows:
            values = dict(zip(_SEND_COLUMNS, row, strict=True))
            for name in _SEND_TIMES:
                values[name] = _from_db_time(values[name])
            found.append(SendRecord(**values))
        return found

    def _update_send(
        self, assignments: str, params: Sequence[Any], send_id: int, from_states: Sequence[str]
    ) -> bool:
        with self._transaction(write=True) as tx:
            changed = tx.run(
                f"UPDATE sends SET {assignments} "
                f"WHERE id = ? AND state IN ({_placeholders(len(from_states))})",
                (*params, send_id, *from_states),
            )
        return changed == 1


# --------------------------------------------------------------------------- SQLite


class _SqliteTx(_Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], int]:
        encoded = [
            _utc(p).isoformat(timespec="microseconds") if isinstance(p, datetime) else p
            for p in params
        ]
        cursor = self._conn.execute(sql, encoded)
        rows = cursor.fetchall()
        return rows, cursor.rowcount


class SqliteStore(Store):
    """One SQLite file, for a single process (or several on one machine). Times are stored as
    fixed-width ISO-8601 UTC text, so text comparison is time comparison."""

    _dialect: ClassVar[dict[str, str]] = {
        "ts": "TEXT",
        "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT",  # ids never reused (Slack buttons)
    }

    def __init__(self, path: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(clock=clock)
        self.path = path
        self.target = f"SQLite database {path}"
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._enable_wal()
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc

    def _enable_wal(self) -> None:
        """Switch to WAL; the switch ignores busy_timeout, so retry while another process
        that is opening the same file holds it."""
        for attempt in range(50):
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[_Tx]:
        # BEGIN IMMEDIATE takes the write lock up front: the counts a write depends on cannot
        # change under it, in this process or another.
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.target} is unavailable: {exc}") from exc
            try:
                yield _SqliteTx(self._conn)
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):  # locked, I/O, disk full
                    raise StoreError(f"{self.target}: {exc}") from exc
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StoreError(f"{self.target}: commit failed: {exc}") from exc

    def _lock_migrations(self, tx: _Tx) -> None:
        """BEGIN IMMEDIATE already excludes other writers."""

    def _lock_rate_keys(self, tx: _Tx, keys: Collection[str]) -> None:
        """BEGIN IMMEDIATE already excludes other writers."""

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --------------------------------------------------------------------------- PostgreSQL


class _PgTx(_Tx):
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], int]:
        self._cursor.execute(sql.replace("?", "%s"), list(params))  # type: ignore[arg-type]
        rows = self._cursor.fetchall() if self._cursor.description is not None else []
        return rows, self._cursor.rowcount


def _describe_postgres(url: str) -> tuple[str, list[str]]:
    """``user@host:port/db`` for messages, and the password's spellings to scrub from errors."""
    parts = urlsplit(url)
    secrets = [s for s in {parts.password or "", unquote(parts.password or "")} if s]
    try:
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "PostgreSQL (malformed DATABASE_URL)", secrets
    user = f"{unquote(parts.username)}@" if parts.username else ""
    return f"PostgreSQL {user}{host}:{port}{unquote(parts.path)}", secrets


def _scrub(text: str, secrets: list[str]) -> str:
    """One line, without the password, whatever libpq chose to echo."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return " ".join(text.split())


class PostgresStore(Store):
    """A PostgreSQL database shared by any number of app processes. Cross-process exclusion
    uses transaction-scoped advisory locks, released by commit or rollback (or a crash)."""

    _dialect: ClassVar[dict[str, str]] = {
        "ts": "TIMESTAMPTZ",
        "serial_pk": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    }

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(clock=clock)
        self.target, self._secrets = _describe_postgres(url)
        # One direct connection first: the pool only reports a timeout, this gives the reason.
        try:
            psycopg.connect(url, connect_timeout=max(2, int(timeout))).close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.target}: {self.scrub(str(exc))}") from None
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=timeout,
            kwargs={"connect_timeout": max(2, int(timeout))},
            check=ConnectionPool.check_connection,
            name="sms-bridge-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout:
            self._pool.close()
            raise StoreError(
                f"cannot connect to {self.target}: no connection within {timeout:g}s"
            ) from None

    def scrub(self, text: str) -> str:
        return _scrub(text, self._secrets)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[_Tx]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cursor:
                yield _PgTx(cursor)
        except PoolTimeout:
            raise StoreError(f"{self.target}: no database connection available") from None
        except psycopg.OperationalError as exc:
            message = self.scrub(str(exc))
            raise StoreError(f"{self.target}: {message}") from exc

    def _lock_migrations(self, tx: _Tx) -> None:
        tx.run(
            "SELECT pg_advisory_xact_lock(hashtext('sms-bridge:migrate:' "
            "|| COALESCE(current_schema(), '')))"
        )

    def _lock_rate_keys(self, tx: _Tx, keys: Collection[str]) -> None:
        # Locks are taken in hash order, the same in every process, so two requests with
        # overlapping recipients cannot deadlock.
        if not keys:
            return
        hashes = tx.rows(
            "SELECT DISTINCT hashtext(k) AS h FROM unnest(?::text[]) AS k ORDER BY h",
            (sorted(keys),),
        )
        for (value,) in hashes:
            tx.run("SELECT pg_advisory_xact_lock(?::bigint)", (value,))

    def close(self) -> None:
        self._pool.close()


# --------------------------------------------------------------------------- opening


def open_store(database_url: str, *, clock: Callable[[], datetime] = utcnow) -> Store:
    """Open the store named by ``DATABASE_URL`` (§2) and migrate it to the latest schema."""
    store: Store
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        if not path.startswith("/") or len(path) < 2:
            raise StoreError(
                "DATABASE_URL: a SQLite URL is sqlite:///relative.db or sqlite:////abs.db"
            )
        path = path[1:]  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
        path = path.split("?", 1)[0]
        if not path or path.endswith("/"):
            raise StoreError(f"DATABASE_URL: the SQLite path {path!r} names no file")
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory of SQLite database {path}: {exc}"
                ) from exc
        store = SqliteStore(path, clock=clock)
    elif database_url.startswith(("postgres://", "postgresql://")):
        store = PostgresStore(database_url, clock=clock)
    else:
        scheme = database_url.split(":", 1)[0] if ":" in database_url else ""
        raise StoreError(
            f"DATABASE_URL: unsupported scheme {scheme!r}; use sqlite:///path.db, "
            "postgres:// or postgresql://"
        )
    try:
        store.migrate()
    except (psycopg.Error, sqlite3.Error) as exc:
        store.close()
        raise StoreError(f"cannot migrate {store.target}: {store.scrub(str(exc))}") from exc
    except BaseException:
        store.close()
        raise
    return store
