"""Page intake: a page's event kept until its page is done, renewed while it is worked on,
taken over by one process only once nobody renewed it, and purged a day later."""

from __future__ import annotations

from datetime import timedelta

from tests.store.helpers import Backend, FakeClock, new_request, race

STALE = timedelta(seconds=3)


def test_an_undone_event_is_taken_over_once_nobody_renews_it(
    backend: Backend, clock: FakeClock
) -> None:
    one, two = backend.open(), backend.open()
    one.keep_page_event("mention:Ev1", '{"kind": "mention"}')
    one.keep_page_event("mention:Ev1", '{"kind": "a redelivery"}')  # the first is kept
    clock.advance(seconds=2)
    one.renew_page_event("mention:Ev1")  # still being paged
    clock.advance(seconds=2)
    assert two.undone_page_events(clock.now() - STALE) == []
    clock.advance(seconds=2)
    [found] = two.undone_page_events(clock.now() - STALE)
    assert (found.key, found.event, found.tries) == ("mention:Ev1", '{"kind": "mention"}', 0)
    assert two.take_over_page_event(found)
    assert not one.take_over_page_event(found)  # it was taken over already
    assert two.undone_page_events(clock.now() - STALE) == []  # taken: renewed
    two.page_event_done("mention:Ev1")
    clock.advance(minutes=1)
    assert two.undone_page_events(clock.now() - STALE) == []


def test_only_one_process_takes_an_undone_event_over(backend: Backend, clock: FakeClock) -> None:
    stores = [backend.open() for _ in range(6)]
    stores[0].keep_page_event("alert:Ev2", "{}")
    clock.advance(seconds=10)
    [found] = stores[0].undone_page_events(clock.now() - STALE)
    assert race(6, lambda i: stores[i].take_over_page_event(found)).count(True) == 1


def test_an_alerts_claim_keeps_its_event_in_the_same_transaction(
    backend: Backend, clock: FakeClock
) -> None:
    one, two = backend.open(), backend.open()
    hour = timedelta(hours=1)
    assert one.claim_page_event("alert-Ev3", "proc-1", hour, "alert:Ev3", '{"n": 1}')
    assert not two.claim_page_event("alert-Ev3", "proc-2", hour, "alert:Ev3", '{"n": 2}')
    assert one.claim_page_event("alert-Ev3", "proc-1", hour, "alert:Ev3", '{"n": 3}')
    clock.advance(seconds=10)
    found = one.undone_page_events(clock.now() - STALE)
    assert [(f.key, f.event) for f in found] == [("alert:Ev3", '{"n": 1}')]


def test_an_event_nobody_renews_goes_a_day_later_done_or_not(
    backend: Backend, clock: FakeClock
) -> None:
    store = backend.open()
    store.keep_page_event("mention:Ev4", "{}")
    store.keep_page_event("mention:Ev5", "{}")
    store.page_event_done("mention:Ev5")
    clock.advance(hours=23)
    store.purge_before(clock.now() - timedelta(days=90))
    assert len(backend.query("SELECT key FROM page_intake")) == 2
    clock.advance(hours=1, seconds=1)
    store.purge_before(clock.now() - timedelta(days=90))
    assert backend.query("SELECT key FROM page_intake") == []


def test_an_alert_paged_already_is_not_claimed_again_by_a_redelivery(
    backend: Backend, clock: FakeClock
) -> None:
    """The claim's holder may claim again (its own redelivery while it still pages), but
    not once the event's page is done: Slack's last redelivery then pages nothing."""
    store, hour = backend.open(), timedelta(hours=1)
    assert store.claim_page_event("alert-Ev6", "proc-1", hour, "alert:Ev6", "{}")
    assert store.claim_page_event("alert-Ev6", "proc-1", hour, "alert:Ev6", "{}")
    store.page_event_done("alert:Ev6")
    assert not store.claim_page_event("alert-Ev6", "proc-1", hour, "alert:Ev6", "{}")


def test_a_page_recorded_under_a_later_tries_key_counts_unless_it_expired(
    backend: Backend, clock: FakeClock
) -> None:
    store = backend.open()
    assert not store.page_recorded_for("event:Ev7")
    request = store.create_request(new_request(kind="page", dedupe_key="event:Ev7#2"))
    assert store.page_recorded_for("event:Ev7")
    assert not store.page_recorded_for("event:Ev70")
    assert store.transition(request.id, "expired", from_states=("queued",))
    assert not store.page_recorded_for("event:Ev7")
