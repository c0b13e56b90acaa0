"""The store against both backends, for real: SQLite in a temp dir, PostgreSQL in a fresh schema.

Concurrency tests open one store per thread (separate connections, separate pools on Postgres)
to stand in for separate app processes. A fake clock moves time, so nothing sleeps.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from bot.errors import BridgeError, StoreError
from bot.store import (
    LATEST_SCHEMA_VERSION,
    TRANSITIONS,
    NewRecipient,
    NewRequest,
    RateLimited,
    RateLimits,
    RequestState,
    SqliteStore,
    Store,
    StoredRequest,
    open_store,
)

PG_URL = os.environ.get("SMS_BRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ALICE = NewRecipient("+447700900123", "alice")
CAROL = NewRecipient("+34600000001", None)
BOB = NewRecipient("+447700900456", "bob")
T = TypeVar("T")


class FakeClock:
    """Time that only moves when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@dataclass
class Backend:
    """Where one test's database lives, and every store opened on it (closed at teardown)."""

    name: str
    url: str
    clock: FakeClock
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = open_store(self.url, clock=self.clock.now)
        self.opened.append(store)
        return store

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Read the database behind the store's back, as another tool would."""
        if self.name == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                return conn.execute(sql).fetchall()
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 3, 3, 14, 0, 0, 123456, tzinfo=UTC))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the test server; an unreachable server fails the test, never skips."""
    schema = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    backend = Backend(request.param, url, clock)
    try:
        yield backend
    finally:
        for store in backend.opened:
            store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def new_request(**changes: Any) -> NewRequest:
    base = NewRequest(
        kind="sms",
        sender="U0DEV1",
        channel_id="C0GENERAL",
        from_name="main",
        from_number="+17137157533",
        recipients=(ALICE, CAROL),
        text="The database is on fire",
        segments=1,
        encoding="GSM-7",
    )
    return replace(base, **changes)


def race(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``count`` threads released at the same instant; re-raise failures."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results


def drive_to(store: Store, state: RequestState) -> StoredRequest:
    """A request in ``state``, reached through legal transitions only."""
    approval = state in ("pending_approval", "approved", "rejected", "expired")
    request = store.create_request(new_request(approval_required=approval))
    path: dict[RequestState, list[tuple[RequestState, RequestState]]] = {
        "pending_approval": [],
        "approved": [("pending_approval", "approved")],
        "rejected": [("pending_approval", "rejected")],
        "expired": [("pending_approval", "expired")],
        "queued": [],
        "sending": [("queued", "sending")],
    }
    for source, target in path[state]:
        assert store.transition(request.id, target, from_states=[source])
    return request


# --------------------------------------------------------------------------- schema


def test_migrate_is_versioned_and_idempotent(backend: Backend) -> None:
    first = backend.open()
    first.migrate()
    first.migrate()
    assert first.schema_version() == LATEST_SCHEMA_VERSION
    created = first.create_request(new_request())

    second = backend.open()  # another process starting on the same database
    assert second.schema_version() == LATEST_SCHEMA_VERSION
    assert second.get_request(created.id) == created
    versions = backend.query("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == list(range(1, LATEST_SCHEMA_VERSION + 1))


def test_processes_starting_at_once_migrate_safely(backend: Backend) -> None:
    stores = race(4, lambda _: backend.open())
    assert all(s.schema_version() == LATEST_SCHEMA_VERSION for s in stores)
    assert len(backend.query("SELECT version FROM schema_migrations")) == LATEST_SCHEMA_VERSION


def test_a_newer_schema_is_refused(backend: Backend) -> None:
    backend.open()
    sql = (
        "INSERT INTO schema_migrations (version, description, applied_at) "
        "VALUES (999, 'future', '2030-01-01T00:00:00+00:00')"
    )
    if backend.name == "sqlite":
        with sqlite3.connect(backend.url.removeprefix("sqlite:///")) as conn:
            conn.execute(sql)
    else:
        with psycopg.connect(backend.url) as conn:
            conn.execute(sql)
    with pytest.raises(StoreError, match="version 999"):
        backend.open()


# --------------------------------------------------------------------------- opening


def test_relative_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/bridge.db")
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "data" / "bridge.db").exists()
        journal = sqlite3.connect(tmp_path / "data" / "bridge.db").execute("PRAGMA journal_mode")
        assert journal.fetchone() == ("wal",)
    finally:
        store.close()


def test_heroku_postgres_scheme(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://")
    store = open_store("postgres://" + pg_url.removeprefix("postgresql://"))
    try:
        assert store.schema_version() == LATEST_SCHEMA_VERSION
    finally:
        store.close()


def test_unreachable_postgres_names_the_server_not_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgres://bridge:s3cr%21t-pw@127.0.0.1:1/sms")
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "s3cr" not in message
    assert isinstance(caught.value, BridgeError)


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(StoreError, match="unsupported scheme 'mysql'") as caught:
        open_store("mysql://root:hunter2@db/sms")
    assert "hunter2" not in str(caught.value)


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


def test_eight_concurrent_claims_have_one_winner(backend: Backend) -> None:
    request = drive_to(backend.open(), "queued")
    send = backend.open().sends(request.id)[0]
    stores = [backend.open() for _ in range(8)]
    results = race(8, lambda i: stores[i].claim_send(send.id))
    assert results.count(True) == 1
    claimed = stores[0].get_send(send.id)
    assert claimed is not None
    assert (claimed.state, claimed.attempts) == ("sending", 1)


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


# --------------------------------------------------------------------------- keys and leases


def test_claim_key_first_wins_until_it_expires(backend: Backend, clock: FakeClock) -> None:
    one, two = backend.open(), backend.open()
    ttl = timedelta(minutes=10)
    assert one.claim_key("event:Ev123", ttl)
    assert not two.claim_key("event:Ev123", ttl)
    assert not one.claim_key("event:Ev123", ttl)
    assert two.claim_key("event:Ev456", ttl)
    clock.advance(minutes=9, seconds=59)
    assert not two.claim_key("event:Ev123", ttl)
    clock.advance(seconds=1)
    assert two.claim_key("event:Ev123", ttl)
    assert not one.claim_key("event:Ev123", ttl)
    clock.advance(minutes=10)
    assert one.purge_keys() == 2


def test_claim_key_race(backend: Backend) -> None:
    stores = [backend.open() for _ in range(8)]
    results = race(8, lambda i: stores[i].claim_key("auto-page:C0INCIDENT", timedelta(minutes=10)))
    assert results.count(True) == 1


def test_lease_is_exclusive_until_expiry_and_renewable(backend: Backend, clock: FakeClock) -> None:
    one, two = backend.open(), backend.open()
    ttl = timedelta(seconds=30)
    assert one.acquire_lease("reply-poller", "proc-1", ttl)
    assert not two.acquire_lease("reply-poller", "proc-2", ttl)
    assert two.acquire_lease("sweeper", "proc-2", ttl)
    clock.advance(seconds=20)
    assert one.acquire_lease("reply-poller", "proc-1", ttl)  # renewed until +50s
    clock.advance(seconds=20)
    assert not two.acquire_lease("reply-poller", "proc-2", ttl)
    clock.advance(seconds=10)
    assert two.acquire_lease("reply-poller", "proc-2", ttl)
    assert not one.acquire_lease("reply-poller", "proc-1", ttl)
    assert not one.release_lease("reply-poller", "proc-1")
    assert two.release_lease("reply-poller", "proc-2")
    assert one.acquire_lease("reply-poller", "proc-1", ttl)


# --------------------------------------------------------------------------- rate limits


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


# --------------------------------------------------------------------------- replies (issue 7)


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
    from bot.store import ReplyCursor

    assert store.reply_cursor("SMS1", ALICE.number) is None
    cursor = ReplyCursor("SMS1", ALICE.number, "100|inbound|", "SMI1", 1771502400)
    store.save_reply_cursor(cursor)
    assert store.reply_cursor("SMS1", ALICE.number) == cursor
    moved = ReplyCursor("SMS1", ALICE.number, "200|inbound|", "SMI2", 1771502500)
    store.save_reply_cursor(moved)
    assert store.reply_cursor("SMS1", ALICE.number) == moved
    assert store.reply_cursor("SMS2", ALICE.number) is None


def test_an_inbound_message_is_claimed_once(backend: Backend, clock: FakeClock) -> None:
    stores = [backend.open() for _ in range(4)]
    won = race(
        4,
        lambda i: stores[i].claim_inbound(
            "SMI1", "SMS1", ALICE.number, sent_at=clock.now(), request_id=None, kind="reply"
        ),
    )
    assert sorted(won) == [False, False, False, True]
    found = stores[0].inbound_message("SMI1")
    assert found is not None and (found.contact, found.kind) == (ALICE.number, "reply")
    assert found.sent_at == clock.now() and stores[0].inbound_message("SMI2") is None


def test_opt_out_and_back_in(store: Store, clock: FakeClock) -> None:
    assert store.opted_out_numbers() == frozenset()
    assert store.opt_out(ALICE.number, "replied STOP (SMI1)")
    assert not store.opt_out(ALICE.number, "replied STOP (SMI2)")  # the first one stands
    clock.advance(minutes=1)
    assert store.opt_out(BOB.number, "replied STOPALL (SMI3)")
    assert store.opted_out_numbers() == frozenset({ALICE.number, BOB.number})
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


def test_migrating_a_version_1_database_keeps_its_data(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made before issue 7 (schema 1) gains the new tables, its data untouched."""
    from bot import store as store_module

    with monkeypatch.context() as patch:
        patch.setattr(store_module, "_MIGRATIONS", store_module._MIGRATIONS[:1])
        patch.setattr(store_module, "LATEST_SCHEMA_VERSION", 1)
        old = backend.open()
        request = old.create_request(new_request())
        assert old.schema_version() == 1
    new = backend.open()
    assert new.schema_version() == LATEST_SCHEMA_VERSION >= 2
    assert new.get_request(request.id) is not None
    assert new.opted_out_numbers() == frozenset()
