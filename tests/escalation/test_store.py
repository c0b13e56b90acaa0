"""Ladders in the store, on both backends, with the clock moved by hand: reply codes, the
durable tier timer, and first-ack-wins, also between concurrent "processes" (one store
each, as in the store's own concurrency tests)."""

from __future__ import annotations

from datetime import timedelta

from bot.core.escalation import code_suffix, request_key
from bot.store import NewRecipient, NewRequest, Store, StoredRequest
from bot.store.escalations import Climb, EscalationRecord
from tests.store.helpers import ALICE, BOB, CAROL, Backend, FakeClock, new_request, race

WAIT = timedelta(minutes=5)


def texted(store: Store, request: StoredRequest) -> None:
    """Each send of ``request`` went out (2Chat queued it)."""
    for send in store.sends(request.id):
        assert store.claim_send(send.id)
        store.finish_send(send.id, message_id=f"SMO{send.id}")


def open_page(store: Store, code: str | None = None) -> EscalationRecord:
    """A page to alice and bob, sent, with its ladder open and due in ``WAIT``."""
    code = code or store.reserve_code()
    page = store.create_request(
        new_request(kind="page", recipients=(ALICE, BOB), text="DB down" + code_suffix(code))
    )
    texted(store, page)
    assert store.open_escalation(page.id, "db", code, store.now() + WAIT)
    escalation = store.get_escalation(page.id)
    assert escalation is not None
    return escalation


def tier_two(escalation: EscalationRecord, store: Store) -> Climb:
    send = new_request(
        kind="page", recipients=(CAROL,), dedupe_key=request_key(escalation.id, "r0t1")
    )
    return Climb((1, 0), send, store.now() + WAIT)


def acked_sms(recipients: list[NewRecipient]) -> NewRequest:
    return new_request(recipients=tuple(recipients), text="Acked by alice")


def test_codes_are_unique_while_open_and_quiet_for_72_hours(store: Store, clock: FakeClock) -> None:
    first = [store.reserve_code() for _ in range(240)]
    assert len(set(first)) == 240 and all(len(code) == 2 for code in first)
    assert len(store.reserve_code()) == 3  # every two-character code was issued just now
    escalation = open_page(store, first[0])
    clock.advance(hours=73)
    again = [store.reserve_code() for _ in range(239)]
    assert first[0] not in again and len(set(again)) == 239  # its page is still open
    assert len(store.reserve_code()) == 3
    store.stop_escalation(escalation.id, "U0ADMIN")
    assert store.reserve_code() == first[0]  # closed, and issued over 72 hours ago


def test_the_next_tier_is_due_after_the_wait_and_climbed_once(
    backend: Backend, clock: FakeClock
) -> None:
    stores = [backend.open() for _ in range(4)]
    escalation = open_page(stores[0])
    clock.advance(minutes=4, seconds=59)
    assert stores[0].due_escalations() == []
    clock.advance(seconds=1)
    [due] = stores[1].due_escalations()
    won = race(4, lambda i: stores[i].climb(due, tier_two(due, stores[i])))
    assert len([w for w in won if w]) == 1 and won.count(None) == 3
    tier = stores[0].get_request(next(w for w in won if w))
    assert tier is not None and [r.number for r in tier.recipients] == [CAROL.number]
    moved = stores[0].get_escalation(escalation.id)
    assert moved is not None and (moved.tier, moved.round, moved.state) == (1, 0, "open")
    assert moved.next_tier_at == clock.now() + WAIT
    assert stores[0].due_escalations() == []
    kinds = [(s.kind, s.tier, s.request_id) for s in stores[0].escalation_steps(escalation.id)]
    assert kinds == [("tier", 0, escalation.id), ("tier", 1, tier.id)]


def test_first_ack_wins_once_and_texts_everyone_else_texted(
    backend: Backend, clock: FakeClock
) -> None:
    stores = [backend.open() for _ in range(3)]
    escalation = open_page(stores[0])
    actors = [("+447700900123", "sms"), ("U0DEV1", "button"), ("U0ADMIN", "reaction")]

    def ack(i: int) -> tuple[bool, str | None]:
        actor, via = actors[i]
        number = actor if actor.startswith("+") else None
        return stores[i].ack_escalation(escalation.id, actor, via, acked_sms, number)

    results = race(3, ack)
    winners = [(i, rid) for i, (won, rid) in enumerate(results) if won]
    assert len(winners) == 1
    index, request_id = winners[0]
    assert request_id is not None
    broadcast = stores[0].get_request(request_id)
    assert broadcast is not None
    expected = {BOB.number} if index == 0 else {ALICE.number, BOB.number}
    assert {r.number for r in broadcast.recipients} == expected  # never the acker
    steps = [s.kind for s in stores[0].escalation_steps(escalation.id)]
    assert steps.count("ack") == 1 and steps.count("late_ack") == 2
    acked = stores[0].get_escalation(escalation.id)
    assert acked is not None and acked.state == "acked" and acked.next_tier_at is None
    assert acked.acked_by == actors[index][0]
    clock.advance(hours=1)
    assert stores[0].due_escalations() == []
    assert stores[0].climb(acked, tier_two(acked, stores[0])) is None  # a closed ladder stays


def test_a_reply_code_finds_only_the_page_that_texted_that_number(store: Store) -> None:
    first, second = open_page(store), open_page(store)
    assert first.code != second.code
    assert [e.id for e in store.open_escalations_to(ALICE.number)] == [first.id, second.id]
    assert [e.id for e in store.escalations_with_code(first.code, ALICE.number)] == [first.id]
    assert store.escalations_with_code(first.code, CAROL.number) == []
    assert store.any_open_escalation()
    store.ack_escalation(first.id, ALICE.number, "sms", acked_sms, ALICE.number)
    assert [e.id for e in store.open_escalations_to(ALICE.number)] == [second.id]


def test_an_exhausted_or_stopped_ladder_stops_and_the_audit_has_every_step(
    store: Store, clock: FakeClock
) -> None:
    escalation = open_page(store)
    clock.advance(minutes=5)
    assert store.climb(escalation, Climb(None, None, None)) == ""
    closed = store.get_escalation(escalation.id)
    assert closed is not None and closed.state == "exhausted"
    assert not store.stop_escalation(escalation.id, "U0ADMIN")
    assert not store.any_open_escalation()
    other = open_page(store)
    assert store.stop_escalation(other.id, "U0ADMIN")
    assert not store.stop_escalation(other.id, "U0ADMIN")
    rows = store.escalation_audit_rows()
    assert [(r["request_id"], r["step"]) for r in rows] == [
        (escalation.id, "tier"),
        (escalation.id, "exhausted"),
        (other.id, "tier"),
        (other.id, "stop"),
    ]
    assert rows[-1]["actor"] == "U0ADMIN" and rows[-1]["step_at"].endswith("+00:00")


def test_a_rung_request_is_recorded_once_even_if_asked_twice(store: Store) -> None:
    escalation = open_page(store)
    climb = tier_two(escalation, store)
    assert climb.send is not None
    earlier = store.create_request(climb.send)  # this rung's request exists already
    assert store.climb(escalation, climb) == ""  # the ladder moves, texting nobody twice
    key = request_key(escalation.id, "r0t1")
    assert store.find_request_by_dedupe_key(key) == earlier


def test_retention_never_purges_an_open_ladder(store: Store, clock: FakeClock) -> None:
    """A ladder that lasts longer than ``retention.keep`` keeps its page, its tiers and who
    they texted (an "ok" from them must still ack it); once closed, it goes like any
    other history."""
    escalation = open_page(store)
    request_id = store.climb(escalation, tier_two(escalation, store))
    assert request_id
    texted(store, store.get_request(request_id) or _missing(request_id))
    for done in (escalation.id, request_id):
        store.transition(done, "sending", from_states=["queued"])
        assert store.complete_request_if_done(done)
    clock.advance(days=2)
    assert store.purge_before(store.now() - timedelta(days=1)) == 0
    assert store.get_escalation(escalation.id) is not None
    assert [e.id for e in store.open_escalations_to(CAROL.number)] == [escalation.id]
    assert store.stop_escalation(escalation.id, "U0ADMIN")
    assert store.purge_before(store.now() - timedelta(days=1)) == 2
    assert store.get_escalation(escalation.id) is None


def _missing(request_id: str) -> StoredRequest:
    raise AssertionError(f"no request {request_id}")


def test_a_coded_page_whose_ladder_never_started_is_found_until_it_has_one(
    store: Store, clock: FakeClock
) -> None:
    """What the sweeper starts late: a page with a reply code and no ladder, sent, last
    changed before the cutoff and within the hour; not a page without a code, nor a tier."""
    code = store.reserve_code()
    page = store.create_request(
        new_request(kind="page", recipients=(ALICE, BOB), text="DB down" + code_suffix(code))
    )
    plain = store.create_request(new_request(kind="page", recipients=(ALICE,), text="no ladder"))
    rung = new_request(
        kind="page",
        recipients=(CAROL,),
        text="DB down" + code_suffix(code),
        dedupe_key=request_key(page.id, "r0t1"),
    )
    for request in (page, plain, store.create_request(rung)):
        assert store.transition(request.id, "sending", from_states=("queued",))
        texted(store, request)
        assert store.complete_request_if_done(request.id)
    hour = timedelta(hours=1)
    assert store.pages_without_ladder(store.now() - timedelta(seconds=3), store.now() - hour) == []
    clock.advance(seconds=10)
    found = store.pages_without_ladder(store.now() - timedelta(seconds=3), store.now() - hour)
    assert [request.id for request in found] == [page.id]
    clock.advance(hours=1)
    assert store.pages_without_ladder(store.now(), store.now() - hour) == []  # too late
    assert store.open_escalation(page.id, "db", code, store.now())
    assert store.pages_without_ladder(store.now(), store.now() - 2 * hour) == []
