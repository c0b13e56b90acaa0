"""Retention: ``purge_before`` deletes old finished history in batches and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.errors import RateLimited
from bot.store import RateLimits, ReplyCursor, Store
from tests.store.helpers import ALICE, BOB, Backend, FakeClock, drive_to, inbound, new_request

KEEP = timedelta(days=90)


def finished(store: Store) -> str:
    """A completed request with a send, an ack, an ack summary, a progress message and a
    matched reply: everything that hangs off a request."""
    request = store.create_request(new_request(kind="page", recipients=(ALICE,)))
    assert store.transition(request.id, "sending", from_states=["queued"])
    assert store.transition(request.id, "completed", from_states=["sending"])
    store.acknowledge(request.id, ALICE.number, store.now(), "ack")
    store.save_ack_summary(request.id, "C0GENERAL", "1.1")
    store.set_progress_message(request.id, "1.2")
    store.record_inbound(inbound(f"in-{request.id}", ALICE.number, store.now(), request.id, "ack"))
    store.inbound_handled(f"in-{request.id}")
    return request.id


def count(backend: Backend, table: str) -> int:
    return int(backend.query(f"SELECT COUNT(*) FROM {table}")[0][0])


def test_old_finished_requests_go_with_everything_attached(
    backend: Backend, store: Store, clock: FakeClock
) -> None:
    old_done = finished(store)
    old_rejected = drive_to(store, "rejected").id
    old_pending = drive_to(store, "pending_approval").id  # not finished: kept however old
    old_sending = drive_to(store, "sending").id
    store.record_inbound(inbound("stray-old", BOB.number, store.now()))
    store.inbound_handled("stray-old")
    store.record_inbound(inbound("stray-unhandled", BOB.number, store.now()))
    store.save_reply_cursor(ReplyCursor("SMS1", BOB.number, "m1", None, None))
    store.opt_out(BOB.number, "replied STOP")
    clock.advance(days=91)
    recent = finished(store)
    store.record_inbound(inbound("stray-new", BOB.number, store.now()))

    assert store.purge_before(store.now() - KEEP) == 2

    assert store.get_request(old_done) is None
    assert store.get_request(old_rejected) is None
    assert store.get_request(old_pending) is not None
    assert store.get_request(old_sending) is not None
    assert store.get_request(recent) is not None
    assert store.sends(old_done) == []
    assert store.acknowledgements(old_done) == []
    assert store.ack_summary(old_done) is None
    assert store.progress_message(old_done) is None
    assert store.inbound_message(f"in-{old_done}") is None
    assert store.inbound_message("stray-old") is None
    assert store.inbound_message("stray-unhandled") is not None  # not acted on yet: open work
    assert store.inbound_message("stray-new") is not None
    assert store.inbound_message(f"in-{recent}") is not None
    assert store.reply_cursor("SMS1", BOB.number) is None
    assert store.opted_out_numbers() == frozenset({BOB.number})  # STOP is never forgotten
    assert count(backend, "acknowledgements") == 1
    assert count(backend, "request_reports") == 1


def test_purges_in_batches_until_nothing_old_is_left(store: Store, clock: FakeClock) -> None:
    made = [drive_to(store, "rejected").id for _ in range(7)]
    clock.advance(days=91)
    assert store.purge_before(store.now() - KEEP, batch=3) == 7
    assert all(store.get_request(request_id) is None for request_id in made)
    assert store.purge_before(store.now() - KEEP, batch=3) == 0


def test_counters_older_than_the_hour_go_and_limits_still_hold(
    backend: Backend, store: Store, clock: FakeClock
) -> None:
    limits = RateLimits(per_sender_per_hour=3, per_recipient_per_hour=None)
    store.create_request(new_request(recipients=(ALICE,)), limits=limits)
    clock.advance(minutes=90)
    store.create_request(new_request(recipients=(ALICE, BOB)), limits=limits)
    rows_before = count(backend, "rate_counts")
    store.purge_before(store.now() - KEEP)
    # The first request's sender and number rows are over an hour old; the second's stay.
    assert count(backend, "rate_counts") == rows_before - 2 == 3
    with pytest.raises(RateLimited):
        store.create_request(new_request(recipients=(ALICE, BOB)), limits=limits)


def test_expired_dedupe_keys_go_and_live_ones_stay(
    backend: Backend, store: Store, clock: FakeClock
) -> None:
    assert store.claim_key("old", timedelta(minutes=5))
    assert store.claim_key("live", timedelta(days=1))
    clock.advance(minutes=10)
    store.purge_before(store.now() - KEEP)
    assert backend.query("SELECT key FROM dedupe_keys") == [("live",)]


def test_expired_alert_event_claims_go_and_other_leases_stay(
    backend: Backend, store: Store, clock: FakeClock
) -> None:
    """An alert event's claim is a lease nobody releases: the purge takes it once expired.
    Other leases (a request's, the poller's) are their holders' to release."""
    assert store.acquire_lease("alert-event:Ev1", "p1", timedelta(minutes=5))
    assert store.acquire_lease("alert-event:Ev2", "p1", timedelta(days=1))
    assert store.acquire_lease("reply-poller", "p1", timedelta(minutes=5))
    clock.advance(minutes=10)
    store.purge_before(store.now() - KEEP)
    names = sorted(name for (name,) in backend.query("SELECT name FROM leases"))
    assert names == ["alert-event:Ev2", "reply-poller"]


def test_batch_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="batch"):
        store.purge_before(store.now(), batch=0)
