"""Retention: deleting history older than the policy's ``retention.keep``, a little at a time.

The bridge records every request, send, acknowledgement and reply it handles; left alone, the
database grows for ever. ``purge_before`` deletes what no feature reads any more, in batches,
each its own short transaction, so a purge of months of history never holds the write lock
(SQLite) or row locks (Postgres) long enough to delay a send.

Only finished requests go (completed, rejected, expired) that no open escalation ladder
still needs (a page can await its ack longer than ``retention.keep``), with everything that
hangs off them (sends, acknowledgements, the ack summary, the thread's progress report, by
``ON DELETE CASCADE``; inbound messages matched to them, by hand). An inbound SMS not yet
acted on stays. Opt-outs are never purged: a number that replied STOP stays opted out
however old the reply. Expired dedupe keys, expired claims of alert events and page events
a day old go whatever ``retention.keep`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from bot.store.core import StoreCore
from bot.store.intake import INTAKE_KEPT
from bot.store.leases import ALERT_CLAIM_PREFIX
from bot.store.limits import RATE_WINDOW
from bot.store.tx import Tx, placeholders, utc

_FINISHED = "('completed', 'rejected', 'expired')"
# A request of a ladder still open (its page or a tier it texted): open work, however old.
_OPEN_LADDER = (
    "SELECT 1 FROM escalations e WHERE e.state = 'open' AND (e.id = r.id OR EXISTS "
    "(SELECT 1 FROM escalation_steps t WHERE t.escalation_id = e.id AND t.request_id = r.id))"
)
# A claim of an alert event (a lease) past its time: the event is long paged or dropped.
_EXPIRED_ALERT_CLAIM = (
    f"substr(name, 1, {len(ALERT_CLAIM_PREFIX)}) = '{ALERT_CLAIM_PREFIX}' AND expires_at <= ?"
)
# An SMS matched to no request, acted on (one still pending is open work) and old.
_STRAY_INBOUND = "request_id IS NULL AND pending IS NULL AND seen_at < ?"
_BUCKET_SLACK = RATE_WINDOW / 60  # a counter's minute may hold SMS up to a minute after it


class RetentionQueries(StoreCore):
    """The purge a sweeper runs now and then; safe to run from several processes at once."""

    def purge_before(self, cutoff: datetime, batch: int = 500) -> int:
        """Delete history older than ``cutoff``; returns how many requests went.

        Also goes, whatever ``cutoff``: rate counters no check reads any more (older than
        the hour) and dedupe keys that have expired. Each batch of at most ``batch`` rows
        is committed on its own.
        """
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        cutoff = utc(cutoff)
        now = self._now()
        purged = self._in_batches(batch, lambda tx: _purge_requests(tx, cutoff, batch))
        sweeps = (
            (
                "inbound_messages",
                "uuid",
                "request_id IS NULL AND pending IS NULL AND seen_at < ?",
                cutoff,
            ),
            ("reply_cursors", "channel_uuid, contact", "updated_at < ?", cutoff),
            ("dedupe_keys", "key", "expires_at <= ?", now),
            ("leases", "name", _EXPIRED_ALERT_CLAIM, now),
            ("page_intake", "key", "taken_at < ?", now - INTAKE_KEPT),
            ("rate_counts", "key, bucket", "bucket < ?", now - RATE_WINDOW - _BUCKET_SLACK),
        )
        for table, key, where, moment in sweeps:
            statement = (
                f"DELETE FROM {table} WHERE ({key}) IN "
                f"(SELECT {key} FROM {table} WHERE {where} LIMIT ?)"
            )
            self._in_batches(batch, partial(_run, statement, (moment, batch)))
        return purged

    def _in_batches(self, batch: int, step: Callable[[Tx], int]) -> int:
        """Run ``step`` in its own transaction until it deletes fewer than ``batch`` rows."""
        total = 0
        while True:
            with self._transaction(write=True) as tx:
                done = step(tx)
            total += done
            if done < batch:
                return total


def _run(statement: str, params: Sequence[Any], tx: Tx) -> int:
    return tx.run(statement, params)


def _purge_requests(tx: Tx, cutoff: datetime, batch: int) -> int:
    """One batch of finished requests last changed before ``cutoff``, with their rows."""
    ids = [
        request_id
        for (request_id,) in tx.rows(
            f"SELECT id FROM requests r WHERE state IN {_FINISHED} AND updated_at < ? "
            f"AND NOT EXISTS ({_OPEN_LADDER}) ORDER BY updated_at LIMIT ?",
            (cutoff, batch),
        )
    ]
    if not ids:
        return 0
    marks = placeholders(len(ids))
    tx.run(f"DELETE FROM inbound_messages WHERE request_id IN ({marks})", ids)
    return tx.run(f"DELETE FROM requests WHERE id IN ({marks})", ids)
