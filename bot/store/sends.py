"""Per-recipient sends: each is claimed before 2Chat is called and finished after, so a crash
in between leaves a visible ``sending`` row rather than a silent double send."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.core import StoreCore
from bot.store.leases import request_lease
from bot.store.records import SendRecord, SendState
from bot.store.tx import Pending, Tx, placeholders, utc

# Where a request was posted: (request id, channel, thread ts).
Thread = tuple[str, str, str]
# A request and the holder of its lease on it: (request id, holder).
Lease = tuple[str, str]


class SendQueries(StoreCore):
    """The send lifecycle: queued -> sending -> sent | failed | unknown, and back on Retry."""

    def sends(self, request_id: str) -> list[SendRecord]:
        """The request's sends, in the order the recipients were given."""
        with self._transaction(write=False) as tx:
            return self._sends_where(tx, "s.request_id = ?", (request_id,))

    def get_send(self, send_id: int) -> SendRecord | None:
        with self._transaction(write=False) as tx:
            found = self._sends_where(tx, "s.id = ?", (send_id,))
        return found[0] if found else None

    def send_by_message_id(self, message_id: str) -> SendRecord | None:
        """The send 2Chat gave ``message_id``, if this bridge made it."""
        with self._transaction(write=False) as tx:
            found = self._sends_where(tx, "s.message_id = ?", (message_id,))
        return found[-1] if found else None

    def claim_send(self, send_id: int, *, thread: Thread | None = None) -> bool:
        """queued -> sending, recorded BEFORE 2Chat is called: a crash leaves it visible.
        ``thread`` (request id, channel, ts) stores where the request was posted in the
        same round trip (a delivery's first claim carries it)."""
        now = self._now()
        with self._transaction(write=True) as tx:
            if thread is not None:
                store_thread_in(tx, *thread, now)
            claimed = _update_send_in(
                tx,
                "state = 'sending', claimed_at = ?, attempts = attempts + 1, updated_at = ?",
                (now, now),
                send_id,
                ("queued",),
            )
        return claimed.count == 1

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

    def keep_claim(self, send_id: int) -> bool:
        """Renew a sending claim while its 2Chat call is still running (a heartbeat): a
        sweeper takes only claims nobody renewed, so never a call a live process runs."""
        return self._update_send("claimed_at = ?", (self._now(),), send_id, ("sending",))

    def finish_send(
        self,
        send_id: int,
        *,
        message_id: str | None = None,
        error: str | None = None,
        unknown: bool = False,
    ) -> bool:
        """sending -> sent (with 2Chat's message_id), failed (error) or unknown (unknown=True).

        A success also replaces "unknown": a sweeper may have given up on a call that was
        still running, and 2Chat's message id is better news than a guess."""
        with self._transaction(write=True) as tx:
            finished = _finish_in(tx, send_id, self._now(), message_id, error, unknown)
        return finished.count == 1

    def finish_last_send(
        self,
        send_id: int,
        lease: Lease,
        *,
        message_id: str | None = None,
        error: str | None = None,
        unknown: bool = False,
    ) -> tuple[bool, bool]:
        """``finish_send`` for what should be its request's last send, in the same round trip
        completing the request (if nothing is left to send) and giving up ``lease`` (request
        id, holder) on it once the request is complete: (finished this send, completed the
        request). The three statements and the commit are one round trip on PostgreSQL."""
        request_id, holder = lease
        now = self._now()
        with self._transaction(write=True) as tx:
            finished = _finish_in(tx, send_id, now, message_id, error, unknown)
            completed = _complete_if_done_in(tx, request_id, now)
            _release_if_complete_in(tx, request_id, holder)
        return finished.count == 1, completed.count == 1

    def retry_send(self, send_id: int, attempts: int | None = None) -> bool:
        """unknown|failed -> queued, for a person's explicit Retry; the old outcome is cleared.
        With ``attempts``, only while the send has made that many (the attempt the Retry was
        offered for): a second click, or a click on an older outcome, changes nothing."""
        assignments = (
            "state = 'queued', message_id = NULL, error = NULL, claimed_at = NULL, updated_at = ?"
        )
        if attempts is None:
            return self._update_send(assignments, (self._now(),), send_id, ("unknown", "failed"))
        with self._transaction(write=True) as tx:
            changed = tx.run(
                f"UPDATE sends SET {assignments} WHERE id = ? "
                "AND state IN ('unknown', 'failed') AND attempts = ?",
                (self._now(), send_id, attempts),
            )
        return changed == 1

    def mark_unknown(
        self, send_id: int, reason: str, *, claimed_before: datetime | None = None
    ) -> bool:
        """sending -> unknown for a send abandoned by a crash; only one sweeper wins. With
        ``claimed_before``, not if its claim was renewed since (its process is alive)."""
        assignments, params = "state = 'unknown', error = ?, updated_at = ?", (reason, self._now())
        if claimed_before is None:
            return self._update_send(assignments, params, send_id, ("sending",))
        with self._transaction(write=True) as tx:
            changed = tx.run(
                f"UPDATE sends SET {assignments} "
                "WHERE id = ? AND state = 'sending' AND claimed_at < ?",
                (*params, send_id, utc(claimed_before)),
            )
        return changed == 1

    def stale_sends(self, claimed_before: datetime) -> list[SendRecord]:
        """Sends still ``sending`` since before ``claimed_before``: their process likely died."""
        with self._transaction(write=False) as tx:
            return self._sends_where(
                tx, "s.state = 'sending' AND s.claimed_at < ?", (utc(claimed_before),)
            )

    def complete_request_if_done(self, request_id: str) -> bool:
        """sending -> completed once no send is queued or sending; True for one caller only."""
        with self._transaction(write=True) as tx:
            completed = _complete_if_done_in(tx, request_id, self._now())
        return completed.count == 1

    def _update_send(
        self, assignments: str, params: Sequence[Any], send_id: int, from_states: Sequence[str]
    ) -> bool:
        with self._transaction(write=True) as tx:
            updated = _update_send_in(tx, assignments, params, send_id, from_states)
        return updated.count == 1


def _update_send_in(
    tx: Tx, assignments: str, params: Sequence[Any], send_id: int, from_states: Sequence[str]
) -> Pending:
    """One conditional update of a send, read after the commit: it changed one row only if
    the send was in one of ``from_states``."""
    return tx.later(
        f"UPDATE sends SET {assignments} "
        f"WHERE id = ? AND state IN ({placeholders(len(from_states))})",
        (*params, send_id, *from_states),
    )


def _finish_in(
    tx: Tx,
    send_id: int,
    now: datetime,
    message_id: str | None,
    error: str | None,
    unknown: bool,
) -> Pending:
    if message_id is not None and (error is not None or unknown):
        raise ValueError("a send with a message_id has neither an error nor an unknown outcome")
    state: SendState = "unknown" if unknown else "failed" if error is not None else "sent"
    return _update_send_in(
        tx,
        "state = ?, message_id = ?, error = ?, updated_at = ?",
        (state, message_id, error, now),
        send_id,
        ("sending", "unknown") if state == "sent" else ("sending",),
    )


def _complete_if_done_in(tx: Tx, request_id: str, now: datetime) -> Pending:
    """sending -> completed once no send is queued or sending (one row changed if so)."""
    return tx.later(
        "UPDATE requests SET state = 'completed', updated_at = ? "
        "WHERE id = ? AND state = 'sending' AND NOT EXISTS ("
        "SELECT 1 FROM sends WHERE request_id = ? AND state IN ('queued', 'sending'))",
        (now, request_id, request_id),
    )


def _release_if_complete_in(tx: Tx, request_id: str, holder: str) -> None:
    """Give up ``holder``'s lease on a request that is complete: nothing is left for its
    holder to deliver. Decided by the database, after the completion before it, so that
    the statement goes out with the others instead of waiting for their answers."""
    tx.later(
        "DELETE FROM leases WHERE name = ? AND holder = ? AND EXISTS ("
        "SELECT 1 FROM requests WHERE id = ? AND state = 'completed')",
        (request_lease(request_id), holder, request_id),
    )


def store_thread_in(
    tx: Tx, request_id: str, channel_id: str, thread_ts: str, now: datetime
) -> None:
    """Remember where the request message was posted: its thread is the request's record."""
    tx.later(
        "UPDATE requests SET channel_id = ?, thread_ts = ?, updated_at = ? WHERE id = ?",
        (channel_id, thread_ts, now, request_id),
    )
