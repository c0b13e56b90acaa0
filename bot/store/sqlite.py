"""The SQLite backend: one file, for a single process (or several on one machine)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

from bot.errors import StoreError
from bot.store.base import Store
from bot.store.records import utcnow
from bot.store.tx import Tx, utc


class _SqliteTx(Tx):
    """Times go in as fixed-width ISO text, the form the time columns hold."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], int]:
        encoded = [
            utc(p).isoformat(timespec="microseconds") if isinstance(p, datetime) else p
            for p in params
        ]
        cursor = self._conn.execute(sql, encoded)
        rows = cursor.fetchall()
        return rows, cursor.rowcount


class SqliteStore(Store):
    """One SQLite file, for a single process (or several on one machine). Times are stored as
    fixed-width ISO-8601 UTC text, so text comparison is time comparison."""

    _dialect: ClassVar[dict[str, str]] = {
        "ts": "TEXT",
        "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT",  # ids never reused (Slack buttons)
    }

    def __init__(self, path: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(clock=clock)
        self.path = path
        self.target = f"SQLite database {path}"
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._enable_wal()
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc

    def _enable_wal(self) -> None:
        """Switch to WAL; the switch ignores busy_timeout, so retry while another process
        that is opening the same file holds it."""
        for attempt in range(50):
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Tx]:
        # BEGIN IMMEDIATE takes the write lock up front: the counts a write depends on cannot
        # change under it, in this process or another.
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.target} is unavailable: {exc}") from exc
            try:
                yield _SqliteTx(self._conn)
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):  # locked, I/O, disk full
                    raise StoreError(f"{self.target}: {exc}") from exc
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StoreError(f"{self.target}: commit failed: {exc}") from exc

    def _lock_migrations(self, tx: Tx) -> None:
        """BEGIN IMMEDIATE already excludes other writers."""

    def _lock_rate_keys(self, tx: Tx, keys: Collection[str]) -> None:
        """BEGIN IMMEDIATE already excludes other writers."""

    def close(self) -> None:
        with self._lock:
            self._conn.close()
