"""What the reply poller reads and remembers: texted numbers, cursors, inbound SMS,
opt-outs and page acknowledgements."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.store import ReplyCursor, Store, StoredRequest
from tests.store.helpers import (
    ALICE,
    BOB,
    CAROL,
    Backend,
    FakeClock,
    inbound,
    new_request,
    race,
)


def sent_request(store: Store, **changes: Any) -> StoredRequest:
    """A request whose every send reached 2Chat (each claimed, then given a message id)."""
    request = store.create_request(new_request(**changes))
    store.transition(request.id, "sending", from_states=["queued"])
    for send in store.sends(request.id):
        store.claim_send(send.id)
        store.finish_send(send.id, message_id=f"SMO-{send.id}")
    store.complete_request_if_done(request.id)
    return request


def test_texted_since_and_latest_request_to(store: Store, clock: FakeClock) -> None:
    start = clock.now()
    assert store.texted_since(start - timedelta(hours=24)) == {}
    store.create_request(new_request(recipients=(BOB,)))  # recorded, never sent: not counted
    first = sent_request(store)
    clock.advance(minutes=5)
    second = sent_request(store, recipients=(ALICE,), kind="page")
    clock.advance(seconds=1)
    uk = sent_request(store, recipients=(ALICE,), from_number="+442071838750", from_name="uk")
    assert store.texted_since(start) == {
        "+17137157533": frozenset({ALICE.number, CAROL.number}),
        "+442071838750": frozenset({ALICE.number}),
    }
    assert store.texted_since(clock.now() + timedelta(seconds=1)) == {}
    latest = store.latest_request_to(ALICE.number, "+17137157533", since=start, until=clock.now())
    assert latest is not None and latest.id == second.id and latest.kind == "page"
    earlier = store.latest_request_to(
        ALICE.number, "+17137157533", since=start, until=start + timedelta(minutes=1)
    )
    assert earlier is not None and earlier.id == first.id
    on_uk = store.latest_request_to(ALICE.number, "+442071838750", since=start, until=clock.now())
    assert on_uk is not None and on_uk.id == uk.id
    assert (
        store.latest_request_to(BOB.number, "+17137157533", since=start, until=clock.now()) is None
    )
    assert store.send_by_message_id(f"SMO-{store.sends(second.id)[0].id}") is not None
    assert store.send_by_message_id("SMO-nope") is None
    assert [r.id for r in store.recent_requests("U0DEV1", 2)] == [uk.id, second.id]


def test_reply_cursor_round_trip(store: Store) -> None:
    assert store.reply_cursor("SMS1", ALICE.number) is None
    cursor = ReplyCursor("SMS1", ALICE.number, "100|inbound|", "SMI1", 1771502400)
    store.save_reply_cursor(cursor)
    assert store.reply_cursor("SMS1", ALICE.number) == cursor
    moved = ReplyCursor("SMS1", ALICE.number, "200|inbound|", "SMI2", 1771502500)
    store.save_reply_cursor(moved)
    assert store.reply_cursor("SMS1", ALICE.number) == moved
    assert store.reply_cursor("SMS2", ALICE.number) is None


def test_an_inbound_message_is_recorded_once(backend: Backend, clock: FakeClock) -> None:
    stores = [backend.open() for _ in range(4)]
    won = race(4, lambda i: stores[i].record_inbound(inbound("SMI1", ALICE.number, clock.now())))
    assert sorted(won) == [False, False, False, True]
    found = stores[0].inbound_message("SMI1")
    assert found is not None and (found.contact, found.kind) == (ALICE.number, "unknown-reply")
    assert found.sent_at == clock.now() and stores[0].inbound_message("SMI2") is None


def test_an_inbound_message_stays_pending_until_it_was_acted_on(
    store: Store, clock: FakeClock
) -> None:
    """What a process killed between recording an SMS and acting on it leaves: the next
    poll finds everything it needs to act, whichever process runs it."""
    recorded = inbound("SMI1", ALICE.number, clock.now(), kind="stop")
    store.record_inbound(recorded)
    store.record_inbound(inbound("SMI2", BOB.number, clock.now()))
    store.inbound_handled("SMI2")
    assert store.unhandled_inbound() == [recorded]
    store.inbound_handled("SMI1")
    assert store.unhandled_inbound() == []


def test_opt_out_and_back_in(store: Store, clock: FakeClock) -> None:
    assert store.opted_out_numbers() == frozenset()
    assert store.opt_out(ALICE.number, "replied STOP (SMI1)")
    assert not store.opt_out(ALICE.number, "replied STOP (SMI2)")  # the first one stands
    clock.advance(minutes=1)
    assert store.opt_out(BOB.number, "replied STOPALL (SMI3)")
    assert store.opted_out_numbers() == frozenset({ALICE.number, BOB.number})
    assert store.opted_out_numbers([BOB.number, CAROL.number]) == frozenset({BOB.number})
    assert store.opted_out_numbers([]) == frozenset()
    [alice, bob] = store.opt_outs()
    assert (alice.number, alice.via, bob.number) == (
        ALICE.number,
        "replied STOP (SMI1)",
        BOB.number,
    )
    assert alice.since < bob.since
    assert store.opt_in(ALICE.number)
    assert not store.opt_in(ALICE.number)
    assert store.opted_out_numbers() == frozenset({BOB.number})


def test_acknowledgements_and_their_summary(store: Store, clock: FakeClock) -> None:
    page = sent_request(store, kind="page", recipients=(ALICE, BOB))
    at = clock.advance(minutes=2)
    assert store.acknowledge(page.id, BOB.number, at, "SMI1")
    assert not store.acknowledge(page.id, BOB.number, at + timedelta(minutes=1), "SMI2")
    assert store.acknowledge(page.id, ALICE.number, at + timedelta(minutes=3), "SMI3")
    acks = store.acknowledgements(page.id)
    assert [(a.number, a.at, a.via) for a in acks] == [
        (BOB.number, at, "SMI1"),
        (ALICE.number, at + timedelta(minutes=3), "SMI3"),
    ]
    assert store.ack_summary(page.id) is None
    assert store.save_ack_summary(page.id, "C0INCIDENT", "1.2")
    assert not store.save_ack_summary(page.id, "C0INCIDENT", "9.9")
    assert store.ack_summary(page.id) == ("C0INCIDENT", "1.2")
