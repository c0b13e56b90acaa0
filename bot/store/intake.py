"""Page intake: the Slack event of a page, kept from before Slack is answered until the page
is recorded, so a process killed in between loses no page (Slack delivers an answered event
only once). A sweeper takes over what is left undone, one process per event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store.core import StoreCore
from bot.store.leases import acquire_lease_in
from bot.store.tx import Tx, from_db_time

# How long a page event's row is kept once nobody renews it (its page done or given up).
INTAKE_KEPT = timedelta(days=1)
_KEEP = (
    "INSERT INTO page_intake (key, event, taken_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING"
)


@dataclass(frozen=True)
class TakenIn:
    """A page's event left undone: ``tries`` takeovers so far, from ``taken_at``."""

    key: str
    event: str
    taken_at: datetime
    tries: int


def _keep_in(tx: Tx, key: str, event: str, now: datetime) -> None:
    tx.along(_KEEP, (key, event, now))


class IntakeQueries(StoreCore):
    """Keep, finish and take over page events; ``purge_before`` drops old rows."""

    def keep_page_event(self, key: str, event: str) -> None:
        """Keep a page's event until ``page_event_done``; a redelivery keeps the first."""
        with self._transaction(write=True) as tx:
            _keep_in(tx, key, event, self._now())

    def claim_page_event(
        self, lease: str, holder: str, ttl: timedelta, key: str, event: str
    ) -> bool:
        """Claim an alert's event for ``holder`` (the lease ``lease``, see
        ``acquire_lease``) and keep the event, in one transaction: True for the claimer,
        unless the event was paged already (Slack delivered it again afterwards)."""
        now = self._now()
        with self._transaction(write=True) as tx:
            acquired = acquire_lease_in(tx, lease, holder, ttl, now)
            _keep_in(tx, key, event, now)
            done = tx.later(
                "SELECT 1 FROM page_intake WHERE key = ? AND done_at IS NOT NULL", (key,)
            )
        return bool(acquired.rows) and not done.rows  # paged already: a redelivery

    def renew_page_event(self, key: str) -> None:
        """Mark an event's page as still under way, so no sweeper takes it over."""
        self._set_undone("taken_at", key)

    def page_event_done(self, key: str) -> None:
        self._set_undone("done_at", key)

    def _set_undone(self, column: str, key: str) -> None:
        """Set ``column`` of an event not yet done to now."""
        with self._transaction(write=True) as tx:
            tx.run(
                f"UPDATE page_intake SET {column} = ? WHERE key = ? AND done_at IS NULL",
                (self._now(), key),
            )

    def undone_page_events(self, before: datetime) -> list[TakenIn]:
        """Events taken (or last renewed) before ``before`` whose page is not done."""
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT key, event, taken_at, tries FROM page_intake WHERE done_at IS NULL "
                "AND taken_at < ? ORDER BY taken_at",
                (before,),
            )
        return [
            TakenIn(str(key), str(event), from_db_time(at) or self._now(), int(tries))
            for key, event, at, tries in rows
        ]

    def page_recorded_for(self, event_key: str) -> bool:
        """Whether an event's page was recorded, under its dedupe key or a later try's
        (``key#n``), and not expired unsent: a takeover then pages nothing again."""
        with self._transaction(write=False) as tx:
            return (
                tx.one(
                    "SELECT 1 FROM requests WHERE (dedupe_key = ? OR dedupe_key LIKE ?) "
                    "AND state <> 'expired' LIMIT 1",
                    (event_key, f"{event_key}#%"),
                )
                is not None
            )

    def take_over_page_event(self, found: TakenIn) -> bool:
        """Take an undone event over for this process: True for one taker only."""
        with self._transaction(write=True) as tx:
            return (
                tx.run(
                    "UPDATE page_intake SET taken_at = ?, tries = tries + 1 "
                    "WHERE key = ? AND tries = ? AND done_at IS NULL",
                    (self._now(), found.key, found.tries),
                )
                == 1
            )
