"""Per-recipient sends: one claimer wins, outcomes are final, crashes are visible."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest

from bot.store import Store
from bot.store.sends import SendQueries
from tests.store.helpers import Backend, FakeClock, drive_to, race


def test_eight_concurrent_claims_have_one_winner(backend: Backend) -> None:
    request = drive_to(backend.open(), "queued")
    send = backend.open().sends(request.id)[0]
    stores = [backend.open() for _ in range(8)]
    results = race(8, lambda i: stores[i].claim_send(send.id))
    assert results.count(True) == 1
    claimed = stores[0].get_send(send.id)
    assert claimed is not None
    assert (claimed.state, claimed.attempts) == ("sending", 1)


def test_a_plain_claim_is_its_grouped_form_run_alone(store: Store) -> None:
    """``claim_send`` is ``claiming`` run alone (``RunAlone``): the same parameters, as
    ``help`` shows them, and the form for the store's threads to group with others."""
    request = drive_to(store, "sending")
    sent = store.sends(request.id)[0]
    claim = store.claim_send
    assert claim.__self__ is store  # type: ignore[attr-defined]
    assert claim.grouped_form is SendQueries.claiming  # type: ignore[attr-defined]
    assert str(inspect.signature(claim)) == str(inspect.signature(store.claiming)).split(" ->")[0]
    assert claim(sent.id)
    assert not claim(sent.id)


def test_finish_send_only_from_sending(store: Store, clock: FakeClock) -> None:
    request = drive_to(store, "sending")
    sent, failed = store.sends(request.id)
    assert not store.finish_send(sent.id, message_id="SMO1")  # still queued
    assert store.claim_send(sent.id)
    assert store.get_send(sent.id).claimed_at == clock.now()  # type: ignore[union-attr]
    clock.advance(seconds=1)
    assert store.finish_send(sent.id, message_id="SMO1")
    assert not store.finish_send(sent.id, error="late")
    assert store.claim_send(failed.id)
    assert store.finish_send(failed.id, error="402 credits exhausted")
    with pytest.raises(ValueError):
        store.finish_send(failed.id, message_id="SMO2", error="both")
    first, second = store.sends(request.id)
    assert (first.state, first.message_id, first.error) == ("sent", "SMO1", None)
    assert first.updated_at == clock.now()
    assert (second.state, second.message_id, second.error) == (
        "failed",
        None,
        "402 credits exhausted",
    )


def test_unknown_outcome_and_retry(store: Store) -> None:
    request = drive_to(store, "sending")
    unknown, failed = store.sends(request.id)
    assert not store.retry_send(unknown.id)  # queued
    store.claim_send(unknown.id)
    assert store.finish_send(unknown.id, error="timeout after 2Chat accepted", unknown=True)
    assert store.get_send(unknown.id).state == "unknown"  # type: ignore[union-attr]
    store.claim_send(failed.id)
    store.finish_send(failed.id, error="503")
    assert store.retry_send(unknown.id)
    assert store.retry_send(failed.id)
    assert not store.retry_send(failed.id)
    retried = store.get_send(unknown.id)
    assert retried is not None
    assert (retried.state, retried.error, retried.claimed_at) == ("queued", None, None)
    assert store.claim_send(unknown.id)
    assert store.get_send(unknown.id).attempts == 2  # type: ignore[union-attr]
    assert store.finish_send(unknown.id, message_id="SMO9")
    assert not store.retry_send(unknown.id)  # sent is final


def test_stale_sends_are_reported_once(backend: Backend, clock: FakeClock) -> None:
    store = backend.open()
    old = drive_to(store, "sending")
    old_sends = store.sends(old.id)
    for send in old_sends:
        store.claim_send(send.id)
    clock.advance(minutes=10)
    fresh = drive_to(store, "sending")
    store.claim_send(store.sends(fresh.id)[0].id)
    stale = store.stale_sends(clock.now() - timedelta(minutes=5))
    assert [s.id for s in stale] == [s.id for s in old_sends]

    sweepers = [backend.open() for _ in range(4)]
    for send in stale:
        results = race(4, lambda i, send=send: sweepers[i].mark_unknown(send.id, "app restarted"))
        assert results.count(True) == 1
    assert store.stale_sends(clock.now() - timedelta(minutes=5)) == []
    assert {(s.state, s.error) for s in store.sends(old.id)} == {("unknown", "app restarted")}


def test_complete_request_if_done(store: Store) -> None:
    request = drive_to(store, "queued")
    assert not store.complete_request_if_done(request.id)  # not sending yet
    store.transition(request.id, "sending", from_states=["queued"])
    first, second = store.sends(request.id)
    store.claim_send(first.id)
    store.finish_send(first.id, message_id="SMO1")
    assert not store.complete_request_if_done(request.id)  # second still queued
    store.claim_send(second.id)
    assert not store.complete_request_if_done(request.id)  # second in flight
    store.finish_send(second.id, error="422")
    assert store.complete_request_if_done(request.id)
    assert not store.complete_request_if_done(request.id)
    assert store.get_request(request.id).state == "completed"  # type: ignore[union-attr]
