"""The durable state of the bridge: requests, per-recipient sends, approvals, dedupe keys, leases.

Where things live:

- ``records``: the states, the legal transitions and the frozen rows handed back;
- ``core`` and ``tx``: what a backend supplies and what every query builds on;
- ``requests``, ``sends``, ``replies``, ``leases`` (and ``limits``): the queries, by concern,
  gathered into the abstract ``Store`` in ``base``;
- ``sqlite`` and ``postgres``: the two backends;
- ``migrations``: the schema as numbered steps.

``open_store`` picks the backend from ``DATABASE_URL`` and migrates it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psycopg

from bot.errors import StoreError
from bot.store.base import Store
from bot.store.migrations import LATEST_SCHEMA_VERSION
from bot.store.postgres import PostgresStore
from bot.store.records import (
    REQUEST_STATES,
    SEND_STATES,
    TRANSITIONS,
    Acknowledgement,
    InboundMessage,
    NewRecipient,
    NewRequest,
    OptOut,
    PendingInbound,
    RateLimits,
    Recorded,
    ReplyCursor,
    RequestState,
    SendRecord,
    SendState,
    StoredRequest,
    utcnow,
)
from bot.store.sqlite import SqliteStore

__all__ = [
    "LATEST_SCHEMA_VERSION",
    "REQUEST_STATES",
    "SEND_STATES",
    "TRANSITIONS",
    "Acknowledgement",
    "InboundMessage",
    "NewRecipient",
    "NewRequest",
    "OptOut",
    "PendingInbound",
    "PostgresStore",
    "RateLimits",
    "Recorded",
    "ReplyCursor",
    "RequestState",
    "SendRecord",
    "SendState",
    "SqliteStore",
    "Store",
    "StoredRequest",
    "open_store",
    "utcnow",
]


def open_store(database_url: str, *, clock: Callable[[], datetime] = utcnow) -> Store:
    """Open the store named by ``DATABASE_URL`` and migrate it to the latest schema."""
    store: Store
    if database_url.startswith("sqlite://"):
        store = SqliteStore(_sqlite_path(database_url), clock=clock)
    elif database_url.startswith(("postgres://", "postgresql://")):
        store = PostgresStore(database_url, clock=clock)
    else:
        scheme = database_url.split(":", 1)[0] if ":" in database_url else ""
        raise StoreError(
            f"DATABASE_URL: unsupported scheme {scheme!r}; use sqlite:///path.db, "
            "postgres:// or postgresql://"
        )
    try:
        store.migrate()
    except (psycopg.Error, sqlite3.Error) as exc:
        store.close()
        raise StoreError(f"cannot migrate {store.target}: {store.scrub(str(exc))}") from exc
    except BaseException:
        store.close()
        raise
    return store


def _sqlite_path(database_url: str) -> str:
    """The file a ``sqlite://`` URL names, with its directory created."""
    path = database_url.removeprefix("sqlite://")
    if not path.startswith("/") or len(path) < 2:
        raise StoreError("DATABASE_URL: a SQLite URL is sqlite:///relative.db or sqlite:////abs.db")
    path = path[1:]  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
    path = path.split("?", 1)[0]
    if not path or path.endswith("/"):
        raise StoreError(f"DATABASE_URL: the SQLite path {path!r} names no file")
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory of SQLite database {path}: {exc}"
            ) from exc
    return path
