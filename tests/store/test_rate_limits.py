"""Hourly limits per sender and per recipient, counted in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import RateLimited
from bot.store import RateLimits, Store, migrations
from bot.store import requests as request_queries
from tests.store.helpers import ALICE, BOB, CAROL, Backend, FakeClock, new_request, race

# The migration that added rate_counts.
COUNTERS_SCHEMA = next(m.version for m in migrations.MIGRATIONS if "rate counters" in m.description)


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


def test_counters_keep_one_row_per_key_and_minute(backend: Backend, store: Store) -> None:
    """What keeps the check's cost flat as history grows: a busy minute is still one row."""
    limits = RateLimits(per_sender_per_hour=1000, per_recipient_per_hour=1000)
    for _ in range(30):
        store.create_request(new_request(recipients=(ALICE, BOB)), limits=limits)
    assert sorted(backend.query("SELECT key, count FROM rate_counts")) == [
        (f"number:{ALICE.number}", 30),
        (f"number:{BOB.number}", 30),
        ("sender:U0DEV1", 60),
    ]


def test_requests_made_without_limits_count_once_limits_are_set(store: Store) -> None:
    store.create_request(new_request(recipients=(ALICE, BOB)))  # no limits configured then
    with pytest.raises(RateLimited, match="2 SMS per hour per sender"):
        store.create_request(
            new_request(recipients=(CAROL,)),
            limits=RateLimits(per_sender_per_hour=2, per_recipient_per_hour=None),
        )


def test_upgrading_keeps_the_last_hour_counted(
    backend: Backend, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before the counters gets them filled from its sends."""
    with monkeypatch.context() as patch:
        before = tuple(m for m in migrations.MIGRATIONS if m.version < COUNTERS_SCHEMA)
        patch.setattr(migrations, "MIGRATIONS", before)
        patch.setattr(request_queries, "count_request", lambda *args: None)
        patch.setattr(request_queries, "uncount_request", lambda *args: None)
        old = backend.open()
        old.create_request(new_request(recipients=(ALICE, BOB)))
        rejected = old.create_request(new_request(recipients=(ALICE,), approval_required=True))
        old.transition(rejected.id, "rejected", from_states=["pending_approval"])
    clock.advance(minutes=10)
    store = backend.open()
    limits = RateLimits(per_sender_per_hour=3, per_recipient_per_hour=2)
    store.create_request(new_request(recipients=(ALICE,)), limits=limits)  # rejected: not counted
    with pytest.raises(RateLimited, match=f"2 SMS per hour to \\{ALICE.number}"):
        store.create_request(new_request(sender="U2", recipients=(ALICE,)), limits=limits)
    with pytest.raises(RateLimited, match="3 SMS per hour per sender"):
        store.create_request(new_request(recipients=(CAROL,)), limits=limits)
