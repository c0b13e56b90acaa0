"""The SQLite backend: one file, for a single process (or several on one machine)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

from bot.errors import StoreError
from bot.store.base import Store
from bot.store.batch import CallOutcome
from bot.store.core import time_left
from bot.store.records import utcnow
from bot.store.tx import Tx, utc

# How long background work waits for another process's write lock.
_BUSY_TIMEOUT_MS = 30_000


class _BatchLost(Exception):
    """SQLite rolled back the whole batch's transaction (a full disk, an I/O error)."""


def _unavailable(exc: sqlite3.Error) -> bool:
    """Errors of the file rather than of our SQL: locked, read-only, I/O, disk full, and
    "not a database" or "malformed" for a file that is no longer ours."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


@lru_cache(maxsize=256)
def _as_text(moment: datetime) -> str:
    """A time as the time columns hold it. Cached: most times in a call's statements are the
    one ``now`` of the call, and the conversion costs more than passing all the other
    parameters of a statement."""
    return utc(moment).isoformat(timespec="microseconds")


class _SqliteTx(Tx):
    """Times go in as fixed-width ISO text, the form the time columns hold."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], int]:
        encoded = [_as_text(p) if isinstance(p, datetime) else p for p in params]
        cursor = self._conn.execute(sql, encoded)
        rows = cursor.fetchall()
        return rows, cursor.rowcount


class SqliteStore(Store):
    """One SQLite file, for a single process (or several on one machine). Times are stored as
    fixed-width ISO-8601 UTC text, so text comparison is time comparison."""

    # Every call shares a batch (see ``bot.store.batch``): a commit's sync is the cost.
    groups_only = False
    _dialect: ClassVar[dict[str, str]] = {
        "ts": "TEXT",
        "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT",  # ids never reused (Slack buttons)
    }

    def __init__(self, path: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(clock=clock)
        self.path = path
        self.target = f"SQLite database {path}"
        self._lock = threading.RLock()
        # The thread running a batch (``run_batch``), whose transactions become savepoints,
        # and what the call being run leaves for after the commit.
        self._batch_thread: int | None = None
        self._pending_steps: list[Callable[[], None]] = []
        try:
            self._conn = sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._enable_wal()
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._file = None if path == ":memory:" else self._identity()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc

    def _identity(self) -> tuple[int, int]:
        """The device and inode ``path`` names now."""
        found = os.stat(self.path)
        return found.st_dev, found.st_ino

    def _still_the_file(self) -> None:
        """Refuse once ``path`` no longer names the file this connection has open (deleted,
        moved or replaced): SQLite would go on writing into it, and all of that would be
        lost at the next start, requests and sends' outcomes included."""
        if self._file is None:
            return
        try:
            same = self._identity() == self._file
        except OSError as exc:
            gone = f"{self.target} is gone ({exc.strerror}); restart the bridge"
            raise StoreError(gone) from None
        if not same:
            raise StoreError(f"{self.target} was replaced while in use; restart the bridge")

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

    def run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[CallOutcome]:
        """Run ``calls`` in order in one transaction, each in a savepoint of its own, and
        commit once: one sync of the file for them all. A call that fails rolls back only
        its savepoint. Each outcome is final: a call's value is handed back only once the
        commit succeeded, and its after-commit steps (a request's hand-over to its caller)
        run only then; a failed commit fails every call.

        The write lock is taken by the first call that writes, waiting for another
        process's only as long as that call's answer allows: reads before it wait for no
        one, as outside a batch, and a call refused the lock in time leaves the next one
        to try with its own wait."""
        outcomes: list[CallOutcome] = []
        with self._lock:
            self._batch_thread = threading.get_ident()
            try:
                for call in calls:
                    outcomes.append(self._run_in_batch(call))
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")
                    self.wrote_at = time.monotonic()
            except BaseException as exc:
                self._rollback()
                if not isinstance(exc, _BatchLost | sqlite3.Error):
                    raise
                cause = exc.__cause__ if isinstance(exc, _BatchLost) else exc
                self._write_failed(True, cause)
                lost = StoreError(f"{self.target}: nothing of this batch was kept: {cause}")
                errors = [outcome.error for outcome in outcomes]
                errors += [None] * (len(calls) - len(outcomes))
                return [CallOutcome(error=error or lost) for error in errors]
            finally:
                self._batch_thread = None
        for outcome in outcomes:
            outcome.settle()
        return outcomes

    def _run_in_batch(self, call: Callable[[], Any]) -> CallOutcome:
        self._pending_steps = []
        writing = self._conn.in_transaction
        try:
            value = call()
        except _BatchLost:
            raise
        except Exception as exc:  # the call's caller gets it
            if writing and not self._conn.in_transaction:
                raise _BatchLost from exc
            return CallOutcome(error=exc)
        return CallOutcome(value=value, after_commit=self._pending_steps)

    def _in_batch(self) -> bool:
        return self._batch_thread == threading.get_ident()

    def _after_commit(self, step: Callable[[], None]) -> None:
        if self._in_batch():
            self._pending_steps.append(step)
        else:
            step()

    @contextmanager
    def _savepoint(self) -> Iterator[Tx]:
        """A call's transaction inside a batch; the first that writes takes the lock."""
        left = time_left()  # its answer may have come due while it queued
        try:
            if not self._conn.in_transaction:
                self._still_the_file()
                with self._waiting_at_most(left):
                    self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("SAVEPOINT call")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.target} is unavailable: {exc}") from exc
        try:
            yield _SqliteTx(self._conn)
            time_left()  # still wanted? If not, roll back instead of keeping it
        except BaseException as exc:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK TO call")
                    self._conn.execute("RELEASE call")
            if isinstance(exc, sqlite3.Error) and _unavailable(exc):
                self._write_failed(True, exc)
                raise StoreError(f"{self.target}: {exc}") from exc
            raise
        try:
            self._conn.execute("RELEASE call")
        except sqlite3.Error as exc:  # the call's writes cannot be told from the batch's
            self._rollback()
            raise _BatchLost from exc

    @contextmanager
    def _transaction(self, *, write: bool, locks: Collection[str] = ()) -> Iterator[Tx]:
        # ``locks`` need nothing more: one writer at a time holds the file's write lock.
        if self._in_batch() and (write or self._conn.in_transaction):
            with self._savepoint() as tx:
                yield tx
            return
        # While Slack waits, this process's lock and another process's write lock are waited
        # for only as long as the answer can wait.
        left = time_left()
        if not self._lock.acquire(timeout=-1 if left is None else left):
            raise StoreError(f"{self.target} is busy: no answer in time")
        try:
            self._still_the_file()
            with self._waiting_at_most(left), self._begin(write) as tx:
                yield tx
                time_left()  # still wanted? If not, roll back instead of committing
        finally:
            self._lock.release()

    @contextmanager
    def _waiting_at_most(self, left: float | None) -> Iterator[None]:
        """Another process's write lock is waited for ``left`` seconds at most (None: the
        long wait of background work)."""
        if left is None:
            yield
            return
        self._conn.execute(f"PRAGMA busy_timeout = {max(1, int(left * 1000))}")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")

    @contextmanager
    def _begin(self, write: bool) -> Iterator[Tx]:
        # BEGIN IMMEDIATE takes the write lock up front: the counts a write depends on cannot
        # change under it, in this process or another.
        try:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.target} is unavailable: {exc}") from exc
        try:
            yield _SqliteTx(self._conn)
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sqlite3.Error) and _unavailable(exc):
                self._write_failed(write, exc)
                raise StoreError(f"{self.target}: {exc}") from exc
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._write_failed(write, exc)
            raise StoreError(f"{self.target}: commit failed: {exc}") from exc
        if write:
            self.wrote_at = time.monotonic()

    def _write_failed(self, write: bool, exc: BaseException | None) -> None:
        """Remember a write refused by the file itself; another writer's lock is no fault."""
        if write and isinstance(exc, sqlite3.Error) and "locked" not in str(exc):
            self.write_failure = (str(exc), time.monotonic())

    def _rollback(self) -> None:
        """Roll back what is open; a failing rollback must not hide the error that caused it."""
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _lock_migrations(self, tx: Tx) -> None:
        """BEGIN IMMEDIATE already excludes other writers."""

    def close(self) -> None:
        with self._lock:
            self._conn.close()
