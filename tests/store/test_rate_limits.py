"""Hourly limits per sender and per recipient, counted in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store import RateLimited, RateLimits, Store
from tests.store.helpers import ALICE, BOB, CAROL, Backend, FakeClock, new_request, race


def test_per_sender_limit_says_when_to_come_back(store: Store, clock: FakeClock) -> None:
    clock.current = start = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
    limits = RateLimits(per_sender_per_hour=3, per_recipient_per_hour=None)
    store.create_request(new_request(recipients=(ALICE, CAROL)), limits=limits)
    clock.advance(minutes=5)
    store.create_request(new_request(recipients=(BOB,)), limits=limits)
    clock.advance(minutes=5)
    with pytest.raises(RateLimited) as caught:
        store.create_request(new_request(recipients=(ALICE,)), limits=limits)
    assert caught.value.retry_at == start + timedelta(hours=1)
    assert str(caught.value) == (
        "rate limit: 3 SMS per hour per sender; you can send again at 15:00 UTC"
    )
    # Other senders are not affected.
    store.create_request(new_request(sender="U0DEV2", recipients=(ALICE,)), limits=limits)
    # Three SMS need all three old ones gone: the one sent at 14:05.
    with pytest.raises(RateLimited) as caught:
        store.create_request(new_request(recipients=(ALICE, BOB, CAROL)), limits=limits)
    assert caught.value.retry_at == start + timedelta(hours=1, minutes=5)
    clock.current = start + timedelta(hours=1)
    store.create_request(new_request(recipients=(ALICE, CAROL)), limits=limits)
    with pytest.raises(RateLimited):
        store.create_request(new_request(recipients=(ALICE,)), limits=limits)


def test_retry_time_is_rounded_up_to_the_minute(store: Store, clock: FakeClock) -> None:
    clock.current = datetime(2025, 3, 3, 14, 4, 30, tzinfo=UTC)
    limits = RateLimits(per_sender_per_hour=1, per_recipient_per_hour=None)
    store.create_request(new_request(recipients=(ALICE,)), limits=limits)
    with pytest.raises(RateLimited, match="at 15:05 UTC"):
        store.create_request(new_request(recipients=(ALICE,)), limits=limits)


def test_per_recipient_limit(store: Store, clock: FakeClock) -> None:
    clock.current = start = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
    limits = RateLimits(per_sender_per_hour=None, per_recipient_per_hour=2)
    store.create_request(new_request(sender="U1", recipients=(ALICE,)), limits=limits)
    clock.advance(minutes=7)
    store.create_request(new_request(sender="U2", recipients=(ALICE, CAROL)), limits=limits)
    with pytest.raises(RateLimited) as caught:
        store.create_request(new_request(sender="U3", recipients=(CAROL, ALICE)), limits=limits)
    assert caught.value.retry_at == start + timedelta(hours=1)
    assert str(caught.value) == (
        f"rate limit: 2 SMS per hour to {ALICE.number}; you can send again at 15:00 UTC"
    )
    store.create_request(new_request(sender="U3", recipients=(CAROL,)), limits=limits)
    with pytest.raises(RateLimited) as caught:  # now both are full; the later one decides
        store.create_request(new_request(sender="U3", recipients=(CAROL, ALICE)), limits=limits)
    assert caught.value.retry_at == start + timedelta(hours=1, minutes=7)
    assert CAROL.number in str(caught.value)


def test_a_request_larger_than_the_limit_is_refused(store: Store) -> None:
    limits = RateLimits(per_sender_per_hour=1, per_recipient_per_hour=None)
    with pytest.raises(RateLimited, match="1 SMS per hour per sender, and this request alone"):
        store.create_request(new_request(recipients=(ALICE, CAROL)), limits=limits)


def test_rejected_and_expired_requests_do_not_count(store: Store) -> None:
    limits = RateLimits(per_sender_per_hour=2, per_recipient_per_hour=2)
    pending = store.create_request(new_request(approval_required=True), limits=limits)
    with pytest.raises(RateLimited):  # waiting for approval still holds its place
        store.create_request(new_request(), limits=limits)
    store.transition(pending.id, "rejected", from_states=["pending_approval"])
    other = store.create_request(new_request(approval_required=True), limits=limits)
    store.transition(other.id, "expired", from_states=["pending_approval"])
    store.create_request(new_request(), limits=limits)
    with pytest.raises(RateLimited):
        store.create_request(new_request(), limits=limits)


def test_concurrent_requests_never_exceed_the_limit(backend: Backend) -> None:
    limits = RateLimits(per_sender_per_hour=6, per_recipient_per_hour=6)
    stores = [backend.open(), backend.open()]
    orders = [(ALICE, BOB), (BOB, ALICE)]  # opposite lock orders must not deadlock

    def create_until_refused(index: int) -> int:
        made = 0
        for _ in range(5):
            try:
                stores[index].create_request(new_request(recipients=orders[index]), limits=limits)
                made += 1
            except RateLimited:
                pass
        return made

    assert sum(race(2, create_until_refused)) == 3
    assert backend.query("SELECT COUNT(*) FROM sends") == [(6,)]
