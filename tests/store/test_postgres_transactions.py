"""What a PostgreSQL transaction carries with its first statements: a Slack answer's time
limit as the statement timeout, and the advisory locks that serialise rate-limited
records; how it stays all or nothing when it goes out without BEGIN; and how records
queued together share one (``Checked`` calls), each still getting the outcome it would have
had alone, in the order they were queued."""

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


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    store.migrate()
    yield store
    store.close()


def test_a_slack_answer_s_time_limit_is_the_transaction_s_statement_timeout(
    store: PostgresStore,
) -> None:
    """Set with BEGIN, in its round trip; background work keeps the server's default."""
    with answer_within(0.3), store._transaction(write=False) as tx:
        limited = tx.one("SELECT current_setting('statement_timeout')")
    with store._transaction(write=False) as tx:
        unlimited = tx.one("SELECT current_setting('statement_timeout')")
    assert limited is not None and limited[0].endswith("ms")
    assert 200 <= int(limited[0].removesuffix("ms")) <= 300
    assert unlimited == ("0",)


def test_transactions_with_the_same_time_limit_run_again_and_again(
    store: PostgresStore,
) -> None:
    """Statements are prepared on first use, but BEGIN with its statement timeout is
    several statements in one, which the server refuses to prepare."""
    for _ in range(6):
        with answer_within(30.0), store._transaction(write=False) as tx:  # 29999 ms each
            assert tx.one("SELECT 1") == (1,)


def test_a_rate_limit_lock_held_elsewhere_is_waited_for_only_as_long_as_the_answer(
    store: PostgresStore,
) -> None:
    """The locks go out with BEGIN, after the statement timeout: another process holding
    one makes the record fail in time for Slack, not wait until that process is done."""
    limits = RateLimits(per_sender_per_hour=10, per_recipient_per_hour=None)
    with psycopg.connect(POSTGRES, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(hashtext('sms-bridge:sender:U0DEV1'))")
        # Let go after a while, so that a wait without a limit fails the test, not hangs it.
        release = threading.Timer(3.0, other.rollback)
        release.start()
        began = time.monotonic()
        try:
            with answer_within(0.3), pytest.raises(StoreError):
                store.create_request(new_request(), limits=limits)
        finally:
            release.cancel()
        assert time.monotonic() - began < 1.5
        other.execute("ROLLBACK")


_LEASE = "INSERT INTO leases (name, holder, expires_at) VALUES (?, 'test', ?)"
_KEY = "INSERT INTO dedupe_keys (key, claimed_at, expires_at) VALUES (?, ?, ?)"


def _leases(store: PostgresStore) -> set[str]:
    with store._transaction(write=False) as tx:
        return {name for (name,) in tx.rows("SELECT name FROM leases")}


def _keys(store: PostgresStore) -> set[str]:
    with store._transaction(write=False) as tx:
        return {key for (key,) in tx.rows("SELECT key FROM dedupe_keys")}


def test_a_transaction_without_begin_is_rolled_back_whole_when_a_statement_fails(
    store: PostgresStore,
) -> None:
    """No answer is read before the commit, so no BEGIN goes out: the statements before
    the pipeline's Sync are one implicit transaction, and the rider and the first insert
    are undone with the second, which fails (the same key twice)."""
    now = store.now()
    with pytest.raises(psycopg.errors.UniqueViolation), store._transaction(write=True) as tx:
        tx.along(_LEASE, ("lease:undone", now))
        tx.later(_KEY, ("key:twice", now, now))
        tx.later(_KEY, ("key:twice", now, now))
    assert _leases(store) == set() and _keys(store) == set()


def test_a_transaction_that_fails_before_its_commit_sends_nothing(store: PostgresStore) -> None:
    now = store.now()
    with pytest.raises(RuntimeError), store._transaction(write=True) as tx:
        tx.along(_LEASE, ("lease:never", now))
        tx.later(_KEY, ("key:never", now, now))
        raise RuntimeError("the caller changed its mind")
    assert _leases(store) == set() and _keys(store) == set()


def test_riders_run_with_the_statement_after_them_or_on_their_own(store: PostgresStore) -> None:
    """A rider (``Tx.along``) is carried by the next statement, one of its own WITH
    included, and riders that nothing follows go out as one statement."""
    now = store.now()
    with store._transaction(write=True) as tx:
        tx.along(_LEASE, ("lease:carried", now))
        carrier = tx.later(f"WITH found AS (SELECT 1) {_KEY} RETURNING key", ("key:1", now, now))
        tx.along(_LEASE, ("lease:alone-1", now))
        tx.along(_KEY, ("key:alone", now, now))
        tx.along(_LEASE, ("lease:alone-2", now))
    assert carrier.rows == [("key:1",)]
    assert _leases(store) == {"lease:carried", "lease:alone-1", "lease:alone-2"}
    assert _keys(store) == {"key:1", "key:alone"}


def test_an_answer_read_before_the_commit_opens_a_block_that_a_failure_rolls_back(
    store: PostgresStore,
) -> None:
    """The first insert's answer is read, so it went out after BEGIN: the failure after it
    still undoes it."""
    now = store.now()
    with pytest.raises(psycopg.errors.UniqueViolation), store._transaction(write=True) as tx:
        assert tx.run(_KEY, ("key:read", now, now)) == 1
        tx.later(_KEY, ("key:read", now, now))
    assert _keys(store) == set()


def test_a_call_that_fails_in_a_group_leaves_the_others_their_own_outcomes(
    store: PostgresStore,
) -> None:
    """Grouped calls share one implicit transaction, which one failing statement undoes
    whole: each is then run again alone, so the others are still claimed, and the one
    that failed alone says why; a call that is not grouped runs between them, in order."""
    request_id = store.create_request(new_request()).id
    first, second = (send.id for send in store.sends(request_id))
    outcomes = store.run_batch(
        [
            store.claiming(first),
            store.claiming("not a send id"),  # type: ignore[arg-type]
            store.claiming(second),
            lambda: [send.state for send in store.sends(request_id)],
            store.claiming(second),
        ]
    )
    assert [outcome.value for outcome in outcomes] == [
        True,
        None,
        True,
        ["sending", "sending"],
        False,
    ]
    assert isinstance(outcomes[1].error, psycopg.errors.InvalidTextRepresentation)


LIMITS = RateLimits(per_sender_per_hour=100, per_recipient_per_hour=100)
START = ("grouped", timedelta(seconds=30))


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
