"""Per-recipient sends: each is claimed before 2Chat is called and finished after, so a crash
in between leaves a visible ``sending`` row rather than a silent double send."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.store.batch import Grouped, RunAlone
from bot.store.core import StoreCore
from bot.store.records import SendRecord, SendState
from bot.store.reports import report_owed_if_completed_in
from bot.store.tx import Pending, Tx, placeholders, utc

# Where a request was posted: (request id, channel, thread ts).
Thread = tuple[str, str, str]
# A request and the holder of its lease on it: (request id, holder).
Lease = tuple[str, str]
_STORE_THREAD = "UPDATE requests SET channel_id = ?, thread_ts = ?, updated_at = ? WHERE id = ?"


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

    def claiming(self, send_id: int, *, thread: Thread | None = None) -> Grouped[bool]:
        """queued -> sending, recorded BEFORE 2Chat is called: a crash leaves it visible.
        ``thread`` (request id, channel, ts) stores where the request was posted in the
        same round trip (a delivery's first claim carries it)."""

        def queue(tx: Tx) -> Callable[[], bool]:
            claimed = _claim_in(tx, send_id, thread, self._now())
            return lambda: claimed.count == 1

        return self._grouped(queue)

    # Each form's plain method: the form run alone, in a transaction of its own.
    claim_send = RunAlone(claiming)

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

    def finishing(
        self,
        send_id: int,
        *,
        message_id: str | None = None,
        error: str | None = None,
        unknown: bool = False,
    ) -> Grouped[bool]:
        """sending -> sent (with 2Chat's message_id), failed (error) or unknown (unknown=True).

        A success also replaces "unknown": a sweeper may have given up on a call that was
        still running, and 2Chat's message id is better news than a guess."""
        outcome = _outcome(message_id, error, unknown)

        def queue(tx: Tx) -> Callable[[], bool]:
            finished = _finish_in(tx, send_id, self._now(), outcome)
            return lambda: finished.count == 1

        return self._grouped(queue)

    finish_send = RunAlone(finishing)

    def finishing_last(
        self,
        send_id: int,
        lease: Lease,
        *,
        message_id: str | None = None,
        error: str | None = None,
        unknown: bool = False,
    ) -> Grouped[tuple[bool, bool]]:
        """``finish_send`` for what should be its request's last send, in the same round trip
        completing the request (if nothing is left to send) and marking its outcome owed to
        the thread: a process that dies before it posts the outcome leaves it to the sweeper,
        which takes it once ``lease`` (request id, holder), still held, lapses.
        (finished this send, completed the request). One statement and one round trip on
        PostgreSQL, three statements on SQLite."""
        request_id, _ = lease
        outcome = _outcome(message_id, error, unknown)

        def queue(tx: Tx) -> Callable[[], tuple[bool, bool]]:
            now = self._now()
            if tx.folds_writes:
                folded = _finish_last_folded(tx, send_id, request_id, now, outcome)
                return lambda: _folded_counts(folded)
            finished = _finish_in(tx, send_id, now, outcome)
            completed = _complete_if_done_in(tx, request_id, now)
            report_owed_if_completed_in(tx, request_id, now)
            return lambda: (finished.count == 1, completed.count == 1)

        return self._grouped(queue)

    finish_last_send = RunAlone(finishing_last)

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


# A send's outcome as its update sets it: (assignments, their values, the states it may
# leave), to be completed with the send's id and the update's time.
_Outcome = tuple[str, tuple[Any, ...], tuple[str, ...]]


def _outcome(message_id: str | None, error: str | None, unknown: bool) -> _Outcome:
    """What finishing a send sets: sent (with 2Chat's message id), failed or unknown."""
    if message_id is not None and (error is not None or unknown):
        raise ValueError("a send with a message_id has neither an error nor an unknown outcome")
    state: SendState = "unknown" if unknown else "failed" if error is not None else "sent"
    return (
        "state = ?, message_id = ?, error = ?, updated_at = ?",
        (state, message_id, error),
        ("sending", "unknown") if state == "sent" else ("sending",),
    )


def _finish_in(tx: Tx, send_id: int, now: datetime, outcome: _Outcome) -> Pending:
    assignments, values, from_states = outcome
    return _update_send_in(tx, assignments, (*values, now), send_id, from_states)


def _claim_in(tx: Tx, send_id: int, thread: Thread | None, now: datetime) -> Pending:
    """queued -> sending (one row changed if so), storing the request's ``thread`` first
    when given: on PostgreSQL in the same statement, which the request's row is updated
    in before the send's (the subquery on ``thread`` runs first), as on SQLite."""
    claim = "state = 'sending', claimed_at = ?, attempts = attempts + 1, updated_at = ?"
    if thread is None:
        return _update_send_in(tx, claim, (now, now), send_id, ("queued",))
    if not tx.folds_writes:
        store_thread_in(tx, *thread, now)
        return _update_send_in(tx, claim, (now, now), send_id, ("queued",))
    request_id, channel_id, thread_ts = thread
    return tx.later(
        f"WITH thread AS ({_STORE_THREAD} RETURNING 1) "
        f"UPDATE sends SET {claim} WHERE id = ? AND state = 'queued' "
        "AND (SELECT count(*) FROM thread) >= 0",
        (channel_id, thread_ts, now, request_id, now, now, send_id),
    )


def _finish_last_folded(
    tx: Tx, send_id: int, request_id: str, now: datetime, outcome: _Outcome
) -> Pending:
    """``finish_last_send``'s three writes as one PostgreSQL statement, one row back: (sends
    finished, requests completed). Its parts all see the tables as they were before it, so
    the completion counts this send as done when the finish changed it, and the outcome is
    owed exactly when this statement completed the request. Rows are changed in SQLite's
    order: the send, the request, its report. The request's state is tested as ``(state =
    'sending') IS TRUE``, which no index serves: on a table not yet analysed (a new
    deployment's first minutes) the planner otherwise ties the primary key with the state
    index and may read every request in flight to find this one."""
    assignments, values, from_states = outcome
    return tx.later(
        f"WITH finished AS (UPDATE sends SET {assignments} "
        f"WHERE id = ? AND state IN ({placeholders(len(from_states))}) RETURNING id), "
        "completed AS (UPDATE requests SET state = 'completed', updated_at = ? "
        "WHERE id = ? AND (state = 'sending') IS TRUE AND NOT EXISTS (SELECT 1 FROM sends "
        "WHERE request_id = ? AND state IN ('queued', 'sending') "
        "AND id NOT IN (SELECT id FROM finished)) RETURNING id), "
        "owed AS (INSERT INTO request_reports (request_id, report_pending, updated_at) "
        "SELECT id, 1, ? FROM completed ON CONFLICT (request_id) DO UPDATE SET "
        "report_pending = excluded.report_pending, updated_at = excluded.updated_at) "
        "SELECT (SELECT count(*) FROM finished), (SELECT count(*) FROM completed)",
        (
            *values,
            now,
            send_id,
            *from_states,
            now,
            request_id,
            request_id,
            now,
        ),
    )


def _folded_counts(folded: Pending) -> tuple[bool, bool]:
    """(finished this send, completed the request) from ``_finish_last_folded``'s row."""
    [(finished, completed)] = folded.rows
    return finished == 1, completed == 1


def _complete_if_done_in(tx: Tx, request_id: str, now: datetime) -> Pending:
    """sending -> completed once no send is queued or sending (one row changed if so)."""
    return tx.later(
        "UPDATE requests SET state = 'completed', updated_at = ? "
        "WHERE id = ? AND state = 'sending' AND NOT EXISTS ("
        "SELECT 1 FROM sends WHERE request_id = ? AND state IN ('queued', 'sending'))",
        (now, request_id, request_id),
    )


def store_thread_in(
    tx: Tx, request_id: str, channel_id: str, thread_ts: str, now: datetime
) -> None:
    """Remember where the request message was posted: its thread is the request's record."""
    tx.later(_STORE_THREAD, (channel_id, thread_ts, now, request_id))
