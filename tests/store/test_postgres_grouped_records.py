"""Records queued together on PostgreSQL share one transaction (``Checked`` calls): each
record still gets the outcome it would have had alone, in the order they were queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from bot.errors import AllOptedOut, RateLimited, StoreError
from bot.store import NewRecipient, PostgresStore, RateLimits, Recorded
from bot.store.core import answer_within
from bot.store.requests import Recording
from tests.conftest import POSTGRES
from tests.store.helpers import ALICE, BOB, CAROL, new_request

LIMITS = RateLimits(per_sender_per_hour=100, per_recipient_per_hour=100)
START = ("grouped", timedelta(seconds=30))


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    store.migrate()
    yield store
    store.close()


def recording(
    store: PostgresStore,
    key: str,
    *recipients: NewRecipient,
    sender: str = "U0DEV1",
    limits: RateLimits = LIMITS,
) -> Recording:
    """A /sms to ``recipients`` as the app records it, claimed by ``key``."""
    return store.recording(
        new_request(sender=sender, recipients=recipients or (ALICE,)),
        limits=limits,
        claims=[(key, timedelta(minutes=5))],
        start=START,
    )


def request_count(store: PostgresStore) -> int:
    with store._transaction(write=False) as tx:
        return int(tx.rows("SELECT count(*) FROM requests")[0][0])


def test_a_refusal_in_a_group_leaves_the_other_records_theirs(store: PostgresStore) -> None:
    """A claim taken already, or every recipient opted out, rolls the group back; each is
    run again alone, so the others are recorded and each refusal is its own caller's."""
    assert store.record_request(new_request(), claims=[("taken", timedelta(minutes=5))])
    store.opt_out(BOB.number, via="test")
    outcomes = store.run_batch(
        [
            recording(store, "first"),
            recording(store, "taken"),
            recording(store, "opted out", BOB),
            recording(store, "last", CAROL),
        ]
    )
    first, taken, opted_out, last = outcomes
    assert isinstance(first.value, Recorded) and first.value.started
    assert taken.value is None and taken.error is None
    assert isinstance(opted_out.error, AllOptedOut)
    assert isinstance(last.value, Recorded) and last.value.fresh
    assert request_count(store) == 3  # the one recorded before, first and last
    assert store.record_request(new_request(), claims=[("opted out", timedelta(minutes=5))])


def test_records_in_one_group_count_against_each_others_limits(store: PostgresStore) -> None:
    """Their statements run in the order queued, so each reads the counts of those before
    it, as if it ran alone after them: two of three from one sender at two an hour."""
    two = RateLimits(per_sender_per_hour=2, per_recipient_per_hour=None)
    outcomes = store.run_batch(
        [
            recording(store, f"r{i}", person, limits=two)
            for i, person in enumerate((ALICE, BOB, CAROL))
        ]
    )
    assert [isinstance(outcome.value, Recorded) for outcome in outcomes] == [True, True, False]
    assert isinstance(outcomes[2].error, RateLimited)
    assert request_count(store) == 2


def test_a_group_waits_only_as_long_as_its_soonest_answer(store: PostgresStore) -> None:
    """The group's statements get the shortest time left among its records: a lock held
    elsewhere fails the group in time for that answer, and each record is then run alone:
    the one past its time fails, the one with time left waits for the lock and is recorded."""
    with psycopg.connect(POSTGRES, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(hashtext('sms-bridge:sender:U0OTHER'))")
        with answer_within(0.3):
            hurried = recording(store, "hurried")
        with answer_within(30):
            patient = recording(store, "patient", BOB, sender="U0OTHER")
        release = threading.Timer(1.0, other.rollback)
        release.start()
        began = time.monotonic()
        try:
            hurried_outcome, patient_outcome = store.run_batch([hurried, patient])
        finally:
            release.cancel()
        took = time.monotonic() - began
    assert isinstance(hurried_outcome.error, StoreError)
    assert isinstance(patient_outcome.value, Recorded)
    assert 0.9 < took < 2.5  # the patient one waited for the lock, alone


def test_groups_with_the_same_people_in_any_order_never_deadlock(postgres_url: str) -> None:
    """Two processes' groups name the same senders in opposite orders. Each group takes
    every record's locks at its start, in one statement, in one order: taken record by
    record, the two would deadlock, and PostgreSQL would break it only after a second."""
    stores = [PostgresStore(postgres_url) for _ in range(2)]
    stores[0].migrate()
    senders = ["U0ONE", "U0TWO", "U0THREE"]
    per_sender = RateLimits(per_sender_per_hour=10**6, per_recipient_per_hour=None)
    # Enough recipients that a record's statements take a while between two senders' locks.
    people = [NewRecipient(f"+4477009{i:05d}", None) for i in range(300)]
    outcomes: list[object] = []
    rounds = 8
    together = threading.Barrier(2)

    def run(index: int) -> None:
        store = stores[index]
        order = senders if index == 0 else senders[::-1]
        for round_ in range(rounds):
            group = [
                recording(store, f"{index}-{round_}-{s}", *people, sender=s, limits=per_sender)
                for s in order
            ]
            together.wait()
            outcomes.extend(outcome.value or outcome.error for outcome in store.run_batch(group))

    began = time.monotonic()
    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - began
    try:
        assert len(outcomes) == 2 * rounds * len(senders)
        assert [o for o in outcomes if not isinstance(o, Recorded)] == []
        assert request_count(stores[0]) == len(outcomes)
        assert took < 4.0  # each deadlock costs a second (deadlock_timeout); else ~1 s in all
    finally:
        for store in stores:
            store.close()
