"""A measurement aid, not app code: the store's three send transactions on psycopg's async
driver, for ``bench.pg_driver``.

Each method mirrors one ``PostgresStore`` method on the path a fresh single-recipient /sms
takes, with the same SQL, statement count and transaction boundaries; ``bench.pg_driver``
checks that statement by statement against the store before timing anything. Where the
store does plain Python work (keys, limit checks, the rows handed back) this calls the same
helpers, so the two differ in how they reach the database and little else.
"""

from __future__ import annotations

import contextlib
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.errors import AllOptedOut, RateLimited, StoreError
from bot.store import NewRequest, RateLimits, Recorded, SendRecord, utcnow
from bot.store.core import time_left
from bot.store.leases import request_lease
from bot.store.limits import _BUCKET, RATE_WINDOW, _checks, _deltas, _frees_up, bucket_of, rate_keys
from bot.store.postgres import _TRUSTED_FOR, _begin
from bot.store.requests import Ticket, _as_recorded
from bot.store.tx import placeholders, utc


class _AsyncTx:
    """``_PgTx`` on an AsyncCursor: the same placeholder rewrite and the same fetch."""

    def __init__(self, cursor: psycopg.AsyncCursor[Any]) -> None:
        self._cursor = cursor

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[Any], int]:
        await self._cursor.execute(sql.replace("?", "%s"), list(params))
        rows = await self._cursor.fetchall() if self._cursor.description is not None else []
        return rows, self._cursor.rowcount

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return (await self.execute(sql, params))[0]

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return (await self.execute(sql, params))[1]


class _Duplicate(Exception):
    """A claim was taken: roll back, as the store does."""


class AsyncTranscript:
    """A measurement aid, not app code: the store's three send transactions on psycopg's
    async driver, on the event loop. The pool is sized, timed out and checked like
    ``PostgresStore``'s; error translation is left out (no error path is exercised)."""

    def __init__(self, url: str, size: int) -> None:
        self._last_used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=size,
            open=False,
            timeout=10.0,
            kwargs={"connect_timeout": 10, "autocommit": True},
            check=self._check_if_idle,
            name="bench-async",
        )

    async def _check_if_idle(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Mirrors ``PostgresStore._check_if_idle``: only a connection idle that long."""
        if time.monotonic() - self._last_used.get(conn, float("-inf")) >= _TRUSTED_FOR:
            await AsyncConnectionPool.check_connection(conn)

    @contextlib.asynccontextmanager
    async def _transaction(self, locks: Collection[str] = ()) -> AsyncIterator[_AsyncTx]:
        """Mirrors ``PostgresStore._transaction``: budget, BEGIN with the statement timeout
        and the locks, commit."""
        left = time_left()
        async with self.pool.connection(timeout=left) as conn:
            async with conn.cursor() as cursor:
                await cursor.execute(_begin(conn, left, locks))
                yield _AsyncTx(cursor)
            time_left()
            await conn.commit()
            self._last_used[conn] = time.monotonic()

    async def record_request(
        self,
        new: NewRequest,
        *,
        limits: RateLimits,
        ticket: Ticket,
        claims: Sequence[tuple[str, timedelta]],
        start: tuple[str, timedelta],
    ) -> Recorded | None:
        """A measurement aid, not app code: mirrors ``RequestQueries.record_request`` on
        the path a fresh /sms takes (no dedupe key, not opted out, within limits, no
        approval): the claims, then the request, in one transaction."""
        now = utc(utcnow())
        try:
            locks = rate_keys(new.sender, tuple(new.recipients), limits)
            async with self._transaction(locks) as tx:
                for key, ttl in claims:
                    if not await tx.rows(
                        "INSERT INTO dedupe_keys (key, claimed_at, expires_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET claimed_at = excluded.claimed_at, "
                        "expires_at = excluded.expires_at WHERE dedupe_keys.expires_at <= ? "
                        "RETURNING key",
                        (key, now, now + ttl, now),
                    ):
                        raise _Duplicate
                recorded = await self._record_in(tx, new, now, limits, start)
                if ticket.abandoned:
                    raise StoreError("the request was abandoned before it was recorded")
        except _Duplicate:
            return None
        ticket.hand_over(recorded)
        return recorded

    async def _record_in(
        self,
        tx: _AsyncTx,
        new: NewRequest,
        now: datetime,
        limits: RateLimits,
        start: tuple[str, timedelta],
    ) -> Recorded:
        """Mirrors ``RequestQueries._record_in`` with ``check_limits``, ``_insert_records``,
        ``count_request`` and ``acquire_lease_in`` inlined; refusals are raised unworded."""
        recipients, numbers = tuple(new.recipients), [r.number for r in new.recipients]
        unique = sorted(set(numbers))
        opted_out = frozenset(
            n
            for (n,) in await tx.rows(
                f"SELECT number FROM opt_outs WHERE number IN ({placeholders(len(unique))})",
                unique,
            )
        )
        if opted_out.issuperset(numbers):
            raise AllOptedOut("every recipient has opted out")
        checks = _checks(new.sender, recipients, limits)
        if any(wanted > limit for _, limit, _, wanted in checks):
            raise RateLimited("rate limit", now + RATE_WINDOW)
        keys, since = [key for _, _, key, _ in checks], now - RATE_WINDOW
        history: dict[str, list[tuple[Any, int]]] = {}
        for key, last_at, count in await tx.rows(
            "SELECT key, last_at, count FROM rate_counts "
            f"WHERE key IN ({placeholders(len(keys))}) AND bucket > ? AND last_at > ? "
            "ORDER BY key, bucket",
            (*keys, since - _BUCKET, since),
        ):
            history.setdefault(key, []).append((last_at, int(count)))
        refusals = [
            free_at
            for _, limit, key, wanted in checks
            if (free_at := _frees_up(history.get(key, []), limit - wanted, now))
        ]
        if refusals:
            raise RateLimited("rate limit", max(refusals))
        request_id = uuid.uuid4().hex
        await tx.rows(
            "INSERT INTO requests (id, kind, sender, channel_id, thread_ts, response_url, "
            "from_name, from_number, text, segments, encoding, state, created_at, "
            "updated_at, expires_at, dedupe_key) "
            f"VALUES ({placeholders(16)}) "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            (request_id, new.kind, new.sender, new.channel_id, new.thread_ts, new.response_url,
             new.from_name, new.from_number, new.text, new.segments, new.encoding, "sending",
             now, now, None, new.dedupe_key),
        )  # fmt: skip
        ids = sorted(
            int(send_id)
            for (send_id,) in await tx.rows(
                "INSERT INTO sends (request_id, number, name, state, attempts, "
                "created_at, updated_at) VALUES "
                + ", ".join("(?, ?, ?, 'queued', 0, ?, ?)" for _ in recipients)
                + " RETURNING id",
                [v for r in recipients for v in (request_id, r.number, r.name, now, now)],
            )
        )
        sends = tuple(
            SendRecord(i, request_id, r.number, r.name, "queued", None, None, 0, None, now)
            for i, r in zip(ids, recipients, strict=True)
        )
        deltas, bucket = _deltas(new.sender, numbers), bucket_of(now)
        await tx.run(
            "INSERT INTO rate_counts (key, bucket, last_at, count) VALUES "
            + ", ".join(f"({placeholders(4)})" for _ in deltas)
            + " ON CONFLICT (key, bucket) DO UPDATE SET count = rate_counts.count + "
            "excluded.count, last_at = CASE WHEN excluded.last_at > rate_counts.last_at "
            "THEN excluded.last_at ELSE rate_counts.last_at END",
            [v for key, count in deltas.items() for v in (key, bucket, now, count)],
        )
        holder, ttl = start
        await tx.rows(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at "
            "WHERE leases.expires_at <= ? OR leases.holder = excluded.holder "
            "RETURNING name",
            (request_lease(request_id), holder, now + ttl, now),
        )
        request = _as_recorded(new, request_id, "sending", now, None)
        return Recorded(request, sends, opted_out, fresh=True, started=True)

    async def claim_send(self, send_id: int, *, thread: tuple[str, str, str]) -> bool:
        """A measurement aid, not app code: mirrors ``SendQueries.claim_send`` with a
        thread, two updates in one transaction."""
        now, (request_id, channel_id, thread_ts) = utc(utcnow()), thread
        async with self._transaction() as tx:
            await tx.run(
                "UPDATE requests SET channel_id = ?, thread_ts = ?, updated_at = ? WHERE id = ?",
                (channel_id, thread_ts, now, request_id),
            )
            return (
                await tx.run(
                    "UPDATE sends SET state = 'sending', claimed_at = ?, attempts = attempts + 1, "
                    f"updated_at = ? WHERE id = ? AND state IN ({placeholders(1)})",
                    (now, now, send_id, "queued"),
                )
                == 1
            )

    async def finish_last_send(
        self, send_id: int, lease: tuple[str, str], *, message_id: str
    ) -> tuple[bool, bool]:
        """A measurement aid, not app code: mirrors ``SendQueries.finish_last_send`` for a
        success, finishing the send, completing the request and giving up its lease in
        one transaction."""
        (request_id, holder), now = lease, utc(utcnow())
        async with self._transaction() as tx:
            finished = (
                await tx.run(
                    "UPDATE sends SET state = ?, message_id = ?, error = ?, updated_at = ? "
                    f"WHERE id = ? AND state IN ({placeholders(2)})",
                    ("sent", message_id, None, now, send_id, "sending", "unknown"),
                )
                == 1
            )
            completed = (
                await tx.run(
                    "UPDATE requests SET state = 'completed', updated_at = ? "
                    "WHERE id = ? AND state = 'sending' AND NOT EXISTS ("
                    "SELECT 1 FROM sends WHERE request_id = ? AND state IN ('queued', 'sending'))",
                    (now, request_id, request_id),
                )
                == 1
            )
            if completed:
                await tx.run(
                    "DELETE FROM leases WHERE name = ? AND holder = ?",
                    (request_lease(request_id), holder),
                )
        return finished, completed
