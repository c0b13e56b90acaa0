"""Dedupe keys and leases: first claimer wins until the claim expires."""

from __future__ import annotations

from datetime import timedelta

from tests.store.helpers import Backend, FakeClock, race


def test_claim_key_first_wins_until_it_expires(backend: Backend, clock: FakeClock) -> None:
    one, two = backend.open(), backend.open()
    ttl = timedelta(minutes=10)
    assert one.claim_key("event:Ev123", ttl)
    assert not two.claim_key("event:Ev123", ttl)
    assert not one.claim_key("event:Ev123", ttl)
    assert two.claim_key("event:Ev456", ttl)
    clock.advance(minutes=9, seconds=59)
    assert not two.claim_key("event:Ev123", ttl)
    clock.advance(seconds=1)
    assert two.claim_key("event:Ev123", ttl)
    assert not one.claim_key("event:Ev123", ttl)
    clock.advance(minutes=10)
    assert one.purge_keys() == 2


def test_claim_key_race(backend: Backend) -> None:
    stores = [backend.open() for _ in range(8)]
    results = race(8, lambda i: stores[i].claim_key("auto-page:C0INCIDENT", timedelta(minutes=10)))
    assert results.count(True) == 1


def test_lease_is_exclusive_until_expiry_and_renewable(backend: Backend, clock: FakeClock) -> None:
    one, two = backend.open(), backend.open()
    ttl = timedelta(seconds=30)
    assert one.acquire_lease("reply-poller", "proc-1", ttl)
    assert not two.acquire_lease("reply-poller", "proc-2", ttl)
    assert two.acquire_lease("sweeper", "proc-2", ttl)
    clock.advance(seconds=20)
    assert one.acquire_lease("reply-poller", "proc-1", ttl)  # renewed until +50s
    clock.advance(seconds=20)
    assert not two.acquire_lease("reply-poller", "proc-2", ttl)
    clock.advance(seconds=10)
    assert two.acquire_lease("reply-poller", "proc-2", ttl)
    assert not one.acquire_lease("reply-poller", "proc-1", ttl)
    assert not one.release_lease("reply-poller", "proc-1")
    assert two.release_lease("reply-poller", "proc-2")
    assert one.acquire_lease("reply-poller", "proc-1", ttl)
