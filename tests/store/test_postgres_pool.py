"""Pooled PostgreSQL connections: checked before a loan only after they sat idle, so a busy
store pays no extra round trip while one the server dropped is replaced, not failed on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from bot.errors import StoreError
from bot.store import PostgresStore, open_store
from bot.store.core import answer_within
from tests.conftest import POSTGRES
from tests.fakes.tcp_proxy import TcpProxy
from tests.test_outage import behind_proxy, proxy

__all__ = ["proxy"]


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    """Two connections: the pool lends the one returned longest ago, so which one serves
    the next call is known."""
    store = PostgresStore(postgres_url, max_size=2)
    store.migrate()
    yield store
    store.close()


def test_the_pool_is_opened_full(postgres_url: str) -> None:
    """A burst after a start or a quiet spell must not wait for connections to open."""
    store = open_store(postgres_url)
    try:
        assert isinstance(store, PostgresStore)
        assert store._pool.get_stats()["pool_size"] == store.connections == store.workers + 1
    finally:
        store.close()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The server pid of every connection the pool checks before lending it."""
    checked: list[int] = []
    real = ConnectionPool.check_connection

    def counted(conn: psycopg.Connection[object]) -> None:
        checked.append(conn.info.backend_pid)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return checked


def server_pid(store: PostgresStore) -> int:
    """The server session of the connection the pool lends next (one is used at a time)."""
    with store._transaction(write=False) as tx:
        row = tx.one("SELECT pg_backend_pid()")
    assert row is not None
    return int(row[0])


def terminate(pids: list[int]) -> None:
    """End these server sessions, and wait until they are gone (it is asynchronous)."""
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
        deadline = time.monotonic() + 5
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the sessions did not end"
            time.sleep(0.01)


def test_a_connection_used_just_now_is_lent_without_a_check(
    store: PostgresStore, checks: list[int]
) -> None:
    store.schema_version()
    checks.clear()
    for _ in range(5):
        store.schema_version()
    assert checks == []  # every loan came within the trust of the last transaction


def test_a_connection_the_server_dropped_while_idle_is_checked_and_replaced(
    store: PostgresStore, checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.store.postgres._TRUSTED_FOR", 0.05)
    terminate([server_pid(store)])
    time.sleep(0.1)  # longer than the trust: the next loan checks the connection
    checks.clear()
    assert store.schema_version() >= 1  # served, by a fresh connection if need be
    assert checks, "an idle connection is checked before it is lent"


def test_after_one_broken_connection_every_pooled_one_is_checked_again(
    store: PostgresStore, checks: list[int]
) -> None:
    with store._transaction(write=False) as tx:  # two connections, both used just now
        row = tx.one("SELECT pg_backend_pid()")
        pids = [int(row[0]) if row else 0, server_pid(store)]
    terminate(pids)
    checks.clear()
    with pytest.raises(StoreError):  # lent unchecked (it was trusted): this call fails
        store.schema_version()
    assert store.schema_version() >= 1  # the next loan checks, and a fresh one serves it
    assert checks, "the failure made the pool check its connections again"


def test_a_restart_that_dropped_every_idle_connection_costs_no_call(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first dead connection makes the pool check the others at once: the call is
    served by a fresh connection, not refused after the pool tried its dead ones in turn."""
    monkeypatch.setattr("bot.store.postgres._TRUSTED_FOR", 0.05)
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        pids = {server_pid(store) for _ in range(store.connections)}  # the pool lends in turn
        assert len(pids) == store.connections
        terminate(list(pids))
        time.sleep(0.1)  # longer than the trust: every loan is checked
        began = time.monotonic()
        assert store.schema_version() >= 1
        assert time.monotonic() - began < 2
    finally:
        store.close()


def test_a_restart_under_load_fails_only_the_call_in_flight(postgres_url: str) -> None:
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        pids = {server_pid(store) for _ in range(store.connections)}  # all used just now
        terminate(list(pids))
        with pytest.raises(StoreError):
            store.schema_version()
        began = time.monotonic()
        for _ in range(store.connections):
            assert store.schema_version() >= 1
        assert time.monotonic() - began < 2
    finally:
        store.close()


def test_a_statement_timeout_is_no_reason_to_check_the_pool(
    store: PostgresStore, checks: list[int]
) -> None:
    """A statement cancelled for taking too long says nothing about the connections."""
    store.schema_version()
    checks.clear()
    with answer_within(0.05), pytest.raises(StoreError), store._transaction(write=False) as tx:
        tx.run("SELECT pg_sleep(1)")
    assert checks == []
    assert store.schema_version() >= 1


@pytest.fixture
def proxied(postgres_url: str, proxy: TcpProxy) -> Iterator[PostgresStore]:
    """A migrated store whose database is reached through ``proxy``, which a test cuts."""
    store = PostgresStore(behind_proxy(postgres_url, proxy))
    store.migrate()
    yield store
    store.close()


def test_while_the_database_is_unreachable_calls_are_refused_in_a_second_and_served_once_it_is_back(
    proxied: PostgresStore, proxy: TcpProxy
) -> None:
    """Refused within a second, not after the pool's whole timeout (10 s): a store thread
    takes one call at a time, so the calls queued behind would each wait that long first.
    Served within seconds of the database's return, not at the pool's next try, which
    backs off (it would be 15 s after the cut here, minutes after a long outage)."""
    proxy.cut()
    with pytest.raises(StoreError):  # the connection in hand is lost
        proxied.schema_version()
    cut = time.monotonic()
    while time.monotonic() - cut < 8:  # calls keep coming, as in a running app
        began = time.monotonic()
        with pytest.raises(StoreError, match="no database connection available"):
            proxied.schema_version()
        assert time.monotonic() - began < 2
    proxy.restore()
    restored = time.monotonic()
    while True:
        try:
            assert proxied.schema_version() >= 1
            break
        except StoreError:
            assert time.monotonic() - restored < 3, "not served after the outage"
    began = time.monotonic()
    for _ in range(proxied.connections):  # the pool refilled itself
        assert proxied.schema_version() >= 1
    assert time.monotonic() - began < 1


def test_a_call_that_finds_the_outage_is_refused_in_a_second_not_the_pools_whole_timeout(
    proxied: PostgresStore, proxy: TcpProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call after a cut, with no time limit of its own (a sweep, a budget read):
    its loan's check finds the connection dead, and from then on the database is known to
    be down. psycopg_pool's own wait would go on (a second's pause, then the rest of its
    10 s for a new connection), holding one of the two store threads all that while: an
    alert queued behind it waited past ten seconds for its "waits for the database" note."""
    monkeypatch.setattr("bot.store.postgres._TRUSTED_FOR", 0.05)
    time.sleep(0.1)  # longer than the trust: the next loan checks its connection
    proxy.cut()
    began = time.monotonic()
    with pytest.raises(StoreError, match="no database connection available"):
        proxied.schema_version()
    assert time.monotonic() - began < 2
