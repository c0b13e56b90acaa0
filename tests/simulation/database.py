"""Where the simulated app processes keep their state: a SQLite file (one process), or a
fresh Postgres schema behind a proxy the steps can cut (two processes)."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.fakes.tcp_proxy import TcpProxy
from tests.postgres_server import POSTGRES


@dataclass
class Database:
    """The apps' database, and how the invariants read it (Postgres without the proxy)."""

    url: str
    processes: int
    proxy: TcpProxy | None = None
    direct: str | None = None  # Postgres without the proxy, for the checks

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.direct is not None:
            with psycopg.connect(self.direct) as conn:
                return list(conn.execute(sql.replace("?", "%s")).fetchall())
        path = self.url.removeprefix("sqlite:///")
        if not Path(path).exists():
            return []
        # Read-write, never ``mode=ro``: a read-only reader may miss what is still in the
        # write-ahead log while an app process restarts.
        conn = sqlite3.connect(path, timeout=5)
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[Database]:
    """A fresh schema in the test Postgres (one per run, so parallel runs never share one),
    reached by the apps through a cuttable proxy."""
    schema = f"sim_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    direct = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    target = urlsplit(POSTGRES)
    try:
        with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
            proxied = urlunsplit(
                target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}")
            )
            yield Database(
                f"{proxied}?options=-csearch_path%3D{schema}", 2, proxy=proxy, direct=direct
            )
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
