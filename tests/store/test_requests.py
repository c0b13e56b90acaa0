"""Recording requests, moving them along their lifecycle, and reading them back."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest

from bot.store import TRANSITIONS, RateLimits, RequestState, Store
from tests.store.helpers import ALICE, BOB, CAROL, Backend, FakeClock, drive_to, new_request, race

# --------------------------------------------------------------------------- requests


def test_create_get_and_sends_round_trip(store: Store, clock: FakeClock) -> None:
    created = store.create_request(
        new_request(response_url="https://hooks.slack.test/r/1", thread_ts="1700000000.000100")
    )
    assert len(created.id) == 32
    assert created.state == "queued"
    assert created.created_at == created.updated_at == clock.now()
    assert created.created_at.tzinfo is not None
    assert created.recipients == (ALICE, CAROL)
    assert created.thread_ts == "1700000000.000100"
    assert created.response_url == "https://hooks.slack.test/r/1"
    assert store.get_request(created.id) == created
    assert store.get_request(uuid.uuid4().hex) is None

    sends = store.sends(created.id)
    assert [(s.number, s.name, s.state, s.attempts) for s in sends] == [
        (ALICE.number, "alice", "queued", 0),
        (CAROL.number, None, "queued", 0),
    ]
    assert all(s.claimed_at is None and s.updated_at == clock.now() for s in sends)
    assert sends[0].id < sends[1].id

    expires = clock.now() + timedelta(minutes=30)
    pending = store.create_request(new_request(approval_required=True, expires_at=expires))
    assert pending.state == "pending_approval"
    assert pending.expires_at == expires


def test_thread_and_approval_message_are_remembered(store: Store, clock: FakeClock) -> None:
    created = store.create_request(new_request(approval_required=True))
    clock.advance(seconds=2)
    store.set_thread(created.id, "C0GENERAL", "1700000000.000200")
    store.set_approval_message(created.id, "C0APPROVALS", "1700000000.000300")
    found = store.get_request(created.id)
    assert found is not None
    assert (found.channel_id, found.thread_ts) == ("C0GENERAL", "1700000000.000200")
    assert (found.approval_channel, found.approval_ts) == ("C0APPROVALS", "1700000000.000300")
    assert found.updated_at == clock.now()


def test_dedupe_key_returns_the_existing_request(store: Store) -> None:
    first = store.create_request(new_request(dedupe_key="slack:cmd:abc"))
    again = store.create_request(new_request(dedupe_key="slack:cmd:abc", text="retry"))
    assert again == first
    assert len(store.sends(first.id)) == 2
    assert store.find_request_by_dedupe_key("slack:cmd:abc") == first
    assert store.find_request_by_dedupe_key("slack:cmd:other") is None
    # A Slack retry is not a second request, so it is never refused by a rate limit.
    tight = RateLimits(per_sender_per_hour=2, per_recipient_per_hour=1)
    assert store.create_request(new_request(dedupe_key="slack:cmd:abc"), limits=tight) == first


def test_concurrent_creates_with_one_dedupe_key_make_one_request(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    made = race(4, lambda i: stores[i].create_request(new_request(dedupe_key="event:Ev1")))
    assert len({r.id for r in made}) == 1
    assert backend.query("SELECT COUNT(*) FROM sends") == [(2,)]


def test_invalid_requests_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="recipient"):
        store.create_request(new_request(recipients=()))
    with pytest.raises(ValueError, match="kind"):
        store.create_request(new_request(kind="fax"))
    with pytest.raises(ValueError, match="naive"):
        store.create_request(new_request(expires_at=datetime(2025, 1, 1)))


# --------------------------------------------------------------------------- state machine

EDGES = sorted((source, target) for source, targets in TRANSITIONS.items() for target in targets)


@pytest.mark.parametrize(("source", "target"), EDGES)
def test_every_legal_transition(
    store: Store, clock: FakeClock, source: RequestState, target: RequestState
) -> None:
    request = drive_to(store, source)
    if source == "sending":
        for send in store.sends(request.id):
            store.claim_send(send.id)
            store.finish_send(send.id, message_id=f"SMO{send.id}")
    clock.advance(seconds=5)
    assert store.transition(request.id, target, from_states=[source], decided_by="U0ADMIN")
    assert not store.transition(request.id, target, from_states=[source])
    found = store.get_request(request.id)
    assert found is not None
    assert found.state == target
    assert (found.decided_by, found.decided_at) == ("U0ADMIN", clock.now())
    assert found.updated_at == clock.now()


def test_decision_reason_is_recorded(store: Store, clock: FakeClock) -> None:
    request = drive_to(store, "pending_approval")
    assert store.transition(
        request.id, "rejected", from_states=["pending_approval"], decided_by="U0LEAD", reason="no"
    )
    found = store.get_request(request.id)
    assert found is not None
    assert (found.decided_by, found.decision_reason, found.decided_at) == (
        "U0LEAD",
        "no",
        clock.now(),
    )
    expiring = drive_to(store, "pending_approval")
    assert store.transition(expiring.id, "expired", from_states=["pending_approval"])
    expired = store.get_request(expiring.id)
    assert expired is not None
    assert (expired.decided_by, expired.decided_at) == (None, None)


def test_illegal_transitions_raise(store: Store) -> None:
    request = drive_to(store, "queued")
    with pytest.raises(ValueError, match="illegal transition queued -> completed"):
        store.transition(request.id, "completed", from_states=["queued"])
    with pytest.raises(ValueError, match="illegal transition completed -> sending"):
        store.transition(request.id, "sending", from_states=["queued", "completed"])
    with pytest.raises(ValueError, match="unknown request state"):
        store.transition(request.id, "sent", from_states=["sending"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        store.transition(request.id, "sending", from_states=[])
    # Legal edge, wrong current state: no error, just not the winner.
    assert not store.transition(request.id, "sending", from_states=["approved"])
    assert store.transition(request.id, "sending", from_states="queued")  # type: ignore[arg-type]


def test_eight_concurrent_approvals_have_one_winner(backend: Backend) -> None:
    request = drive_to(backend.open(), "pending_approval")
    stores = [backend.open() for _ in range(8)]
    results = race(
        8,
        lambda i: stores[i].transition(
            request.id, "approved", from_states=["pending_approval"], decided_by=f"U{i}"
        ),
    )
    assert results.count(True) == 1
    found = stores[0].get_request(request.id)
    assert found is not None
    assert found.decided_by == f"U{results.index(True)}"


def test_expired_approvals(store: Store, clock: FakeClock) -> None:
    soon = store.create_request(
        new_request(approval_required=True, expires_at=clock.now() + timedelta(minutes=30))
    )
    later = store.create_request(
        new_request(approval_required=True, expires_at=clock.now() + timedelta(minutes=60))
    )
    store.create_request(new_request(expires_at=clock.now()))  # not an approval
    assert store.expired_approvals() == []
    clock.advance(minutes=30)
    assert [r.id for r in store.expired_approvals()] == [soon.id]
    clock.advance(minutes=31)
    assert [r.id for r in store.expired_approvals()] == [soon.id, later.id]
    store.transition(soon.id, "expired", from_states=["pending_approval"])
    assert [r.id for r in store.expired_approvals()] == [later.id]
    assert [r.id for r in store.requests_in_state("expired")] == [soon.id]


# --------------------------------------------------------------------------- audit


def test_audit_rows(store: Store, clock: FakeClock) -> None:
    sent = store.create_request(new_request(response_url="https://hooks.slack.test/secret"))
    store.transition(sent.id, "sending", from_states=["queued"])
    first, second = store.sends(sent.id)
    store.claim_send(first.id)
    store.finish_send(first.id, message_id="SMO1")
    store.claim_send(second.id)
    store.finish_send(second.id, error="422 not E.164")
    store.complete_request_if_done(sent.id)
    clock.advance(minutes=1)
    since = clock.now()
    rejected = store.create_request(new_request(approval_required=True, recipients=(BOB,)))
    store.transition(
        rejected.id, "rejected", from_states=["pending_approval"], decided_by="U0LEAD", reason="no"
    )

    rows = store.audit_rows()
    json.dumps(rows)
    assert [(r["request_id"], r["send_id"]) for r in rows] == [
        (sent.id, first.id),
        (sent.id, second.id),
        (rejected.id, store.sends(rejected.id)[0].id),
    ]
    assert "response_url" not in rows[0]
    assert {k: rows[0][k] for k in ("request_state", "number", "name", "send_state")} == {
        "request_state": "completed",
        "number": ALICE.number,
        "name": "alice",
        "send_state": "sent",
    }
    assert (rows[0]["message_id"], rows[1]["error"]) == ("SMO1", "422 not E.164")
    assert rows[0]["created_at"] == "2025-03-03T14:00:00.123456+00:00"
    assert datetime.fromisoformat(rows[0]["claimed_at"]) == sent.created_at
    assert (rows[2]["decided_by"], rows[2]["decision_reason"]) == ("U0LEAD", "no")
    assert rows[2]["decided_at"] == since.isoformat()
    assert rows[2]["from_number"] == "+17137157533"
    assert [r["request_id"] for r in store.audit_rows(since=since)] == [rejected.id]
