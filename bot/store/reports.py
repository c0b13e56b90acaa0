"""What a request's thread shows: its live progress reply and whether its outcome is still
owed, so that any process (a resumer, the sweeper) can finish what another started."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.store.batch import Grouped, RunAlone
from bot.store.core import StoreCore
from bot.store.leases import request_lease
from bot.store.records import StoredRequest
from bot.store.tx import Tx


class ReportQueries(StoreCore):
    """One ``request_reports`` row per request that has a live reply or an owed outcome."""

    def set_progress_message(self, request_id: str, ts: str) -> None:
        """Remember the live reply, so whoever finishes the request edits that one."""
        self._upsert(request_id, "progress_ts", ts)

    def progress_message(self, request_id: str) -> str | None:
        """The live reply's ts, if one was posted."""
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT progress_ts FROM request_reports WHERE request_id = ?", (request_id,)
            )
        return None if row is None or row[0] is None else str(row[0])

    def set_report_pending(self, request_id: str, pending: bool) -> None:
        """Mark the outcome as owed to the thread (Slack refused it) or as delivered."""
        self._upsert(request_id, "report_pending", 1 if pending else 0)

    def landing(self, request_id: str, holder: str) -> Grouped[None]:
        """The outcome reached the thread: no longer owed, and ``holder`` gives up the
        request's lease in the same round trip."""

        def queue(tx: Tx) -> Callable[[], None]:
            tx.along(
                "DELETE FROM leases WHERE name = ? AND holder = ?",
                (request_lease(request_id), holder),
            )
            _upsert_in(tx, request_id, "report_pending", 0, self._now())
            return lambda: None

        return self._grouped(queue)

    report_landed = RunAlone(landing)

    def report_owed(self, request_id: str) -> bool:
        """Whether the request's outcome has still not reached its thread."""
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT report_pending FROM request_reports WHERE request_id = ?", (request_id,)
            )
        return row is not None and bool(row[0])

    def pending_reports(self) -> list[StoredRequest]:
        """Requests whose outcome has not reached their thread yet, oldest first."""
        with self._transaction(write=False) as tx:
            return self._request_where(
                tx,
                "r.id IN (SELECT request_id FROM request_reports WHERE report_pending = 1)",
                (),
            )

    def _upsert(self, request_id: str, column: str, value: str | int) -> None:
        """Set one column of the request's row, creating the row if it has none."""
        with self._transaction(write=True) as tx:
            _upsert_in(tx, request_id, column, value, self._now())


def report_owed_if_completed_in(tx: Tx, request_id: str, now: datetime) -> None:
    """Mark the outcome owed to the thread inside ``tx``, if the request was completed in
    this same transaction (its ``updated_at`` is ``now``; a completion by an earlier call
    has its report owed or landed already): until it lands there, whoever takes the request
    over posts it. Decided by the database, so the statement goes out with the others."""
    tx.later(
        "INSERT INTO request_reports (request_id, report_pending, updated_at) "
        "SELECT id, 1, ? FROM requests WHERE id = ? AND state = 'completed' AND updated_at = ? "
        "ON CONFLICT (request_id) DO UPDATE SET "
        "report_pending = excluded.report_pending, updated_at = excluded.updated_at",
        (now, request_id, now),
    )


def _upsert_in(tx: Tx, request_id: str, column: str, value: str | int, now: datetime) -> None:
    tx.later(
        f"INSERT INTO request_reports (request_id, {column}, updated_at) "
        "VALUES (?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET "
        f"{column} = excluded.{column}, updated_at = excluded.updated_at",
        (request_id, value, now),
    )
