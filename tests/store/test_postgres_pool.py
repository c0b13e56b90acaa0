"""Pooled PostgreSQL connections: checked before a loan only after they sat idle, so a busy
store pays no extra round trip while one the server dropped is replaced, not failed on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from bot.store import PostgresStore, open_store
from tests.conftest import POSTGRES


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    yield store
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
    store.schema_version()
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = '' AND pid <> pg_backend_pid() AND pid = ANY(%s)",
            [list(set(checks))],
        )
    time.sleep(0.1)  # longer than the trust: the next loan checks the connection
    checks.clear()
    assert store.schema_version() >= 1  # served, by a fresh connection if need be
    assert checks, "an idle connection is checked before it is lent"
