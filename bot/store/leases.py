"""Dedupe keys and leases: small first-claimer-wins rows that keep work single across
processes (one handling per Slack event, one reply poller, one sweeper, one runner per
request)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.store.core import StoreCore
from bot.store.tx import Pending, Tx


def request_lease(request_id: str) -> str:
    """The lease held by whichever process runs the request's sends."""
    return f"request:{request_id}"


def _positive(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")


# Leases named so claim an alert event for the process that pages it; expired ones are
# purged with the history (other leases are released by their holders).
ALERT_CLAIM_PREFIX = "alert-"


def claim_key_in(tx: Tx, key: str, ttl: timedelta, now: datetime) -> Pending:
    """Claim ``key`` inside ``tx``: a row comes back for the first claimer (or the first
    after it expired). Part of a larger transaction, so a refusal later in it gives the key
    back."""
    _positive(ttl)
    return tx.later(
        "INSERT INTO dedupe_keys (key, claimed_at, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET claimed_at = excluded.claimed_at, "
        "expires_at = excluded.expires_at WHERE dedupe_keys.expires_at <= ? "
        "RETURNING key",
        (key, now, now + ttl, now),
    )


_TAKE_LEASE = (
    "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
    "expires_at = excluded.expires_at "
    "WHERE leases.expires_at <= ? OR leases.holder = excluded.holder "
    "RETURNING name"
)


def acquire_lease_in(tx: Tx, name: str, holder: str, ttl: timedelta, now: datetime) -> Pending:
    """Take or renew the lease ``name`` for ``holder`` inside ``tx``: a row comes back if
    it did."""
    _positive(ttl)
    return tx.later(_TAKE_LEASE, (name, holder, now + ttl, now))


def take_new_lease_in(tx: Tx, name: str, holder: str, ttl: timedelta, now: datetime) -> None:
    """``acquire_lease_in`` for a lease nobody can hold yet (a request inserted in ``tx``):
    it is taken, so its answer need not be read (``Tx.along``)."""
    _positive(ttl)
    tx.along(_TAKE_LEASE, (name, holder, now + ttl, now))


def release_lease_in(tx: Tx, name: str, holder: str) -> bool:
    """Give up ``holder``'s lease ``name`` inside ``tx``; False if it no longer held it."""
    return tx.run("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)) == 1


class LeaseQueries(StoreCore):
    """Claims that expire on their own, so a crashed holder never blocks the rest for long."""

    def claim_key(self, key: str, ttl: timedelta) -> bool:
        """True for the first claimer of ``key`` (or the first after it expired), else False."""
        with self._transaction(write=True) as tx:
            claimed = claim_key_in(tx, key, ttl, self._now())
        return bool(claimed.rows)

    def purge_keys(self) -> int:
        """Delete expired dedupe keys (housekeeping for a sweeper); returns how many."""
        with self._transaction(write=True) as tx:
            return tx.run("DELETE FROM dedupe_keys WHERE expires_at <= ?", (self._now(),))

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take or renew the lease ``name``: one active reply poller or sweeper across processes."""
        with self._transaction(write=True) as tx:
            acquired = acquire_lease_in(tx, name, holder, ttl, self._now())
        return bool(acquired.rows)

    def release_lease(self, name: str, holder: str) -> bool:
        """Give up a lease at shutdown so another process need not wait for it to expire."""
        with self._transaction(write=True) as tx:
            return release_lease_in(tx, name, holder)
