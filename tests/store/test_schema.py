"""Opening a store from DATABASE_URL, and bringing its schema up to date safely."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from bot.errors import BridgeError, StoreError
from bot.store import LATEST_SCHEMA_VERSION, SqliteStore, migrations, open_store
from bot.store import requests as request_queries
from tests.store.helpers import Backend, new_request, race

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


def test_heroku_postgres_scheme(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://")
    store = open_store("postgres://" + postgres_url.removeprefix("postgresql://"))
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


def test_migrating_a_version_1_database_keeps_its_data(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made before replies were tracked (schema 1) gains the new tables, its data
    untouched."""
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        # Schema 1 had no rate counters (a later step): requests were not counted then.
        patch.setattr(request_queries, "count_request", lambda *args: None)
        old = backend.open()
        request = old.create_request(new_request())
        assert old.schema_version() == 1
    new = backend.open()
    assert new.schema_version() == LATEST_SCHEMA_VERSION >= 2
    assert new.get_request(request.id) is not None
    assert new.opted_out_numbers() == frozenset()
