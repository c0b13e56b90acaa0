"""The PostgreSQL backend: one database shared by any number of app processes."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from functools import partial
from itertools import groupby
from typing import Any, ClassVar, cast
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.errors import CommitUnknown, StoreError
from bot.store.base import Store
from bot.store.batch import CallOutcome, Checked, Grouped, each_alone, group_kind
from bot.store.core import answer_by, time_left
from bot.store.records import utcnow
from bot.store.tx import Pending, Result, Tx

# A connection that finished a transaction this recently is lent without a check.
_TRUSTED_FOR = 1.0
# A loan waits for a connection in turns of this length, and gives up after a turn that
# ends with the database known to be unreachable (a connection was lost or a loan timed
# out, and no transaction has completed since), instead of waiting out the pool's whole
# timeout. Each store thread takes one call at a time, so a call queued behind others
# waiting their full timeout would wait for all of theirs first: an alert's "waits for the
# database" note came 11-25 s into an outage. A server that is back opens a connection well
# within this.
_DOWN_WAIT = 1.0
# How long the pool tries to replace a lost connection before it gives up. Its own retries
# back off (1, 2, 4 … s, up to five minutes by default), so after a two-minute outage the
# next try could come two minutes after the database was back, and every page would wait
# that long. Once it gave up, the next call that finds no connection makes the pool try
# again at once (one try at a time), and the first that succeeds refills it.
_RECONNECT_FOR = 2.0
# Store threads per process. One would leave the CPU idle while it waits on the network;
# each one more takes turns at the GIL with the event loop, and with ten, those turns cost
# more CPU than the queries did (see docs/performance.md).
WORKERS = 2


class _Queued:
    """A statement of a transaction, held back until an answer is wanted or the commit;
    ``riding``, a write (``Tx.along``) to be sent as part of another statement."""

    def __init__(self, sql: str, params: list[Any], *, riding: bool = False) -> None:
        self.sql = sql
        self.params = params
        self.riding = riding
        self.cursor: psycopg.Cursor[Any] | None = None

    def carry(self, riders: Sequence[_Queued]) -> None:
        """Run ``riders`` as part of this statement: each a data-modifying WITH, which
        PostgreSQL runs to completion whether or not the statement reads it."""
        if not riders:
            return
        ctes = ", ".join(f"riding_{index} AS ({rider.sql})" for index, rider in enumerate(riders))
        own = self.sql.removeprefix("WITH ")
        self.sql = f"WITH {ctes}, {own}" if own != self.sql else f"WITH {ctes} {self.sql}"
        self.params = [value for rider in riders for value in rider.params] + self.params


def _with_riders(held: Sequence[_Queued]) -> list[_Queued]:
    """The statements to send for ``held``: each rider carried by the next statement that
    is not one; riders that none follows, by the first of them. Never by a statement
    before them: that one may take the locks they are queued behind, and the parts of one
    statement run in no promised order."""
    sent: list[_Queued] = []
    riders: list[_Queued] = []
    for statement in held:
        if statement.riding:
            riders.append(statement)
            continue
        statement.carry(riders)
        sent.append(statement)
        riders = []
    if riders:
        riders[0].carry(riders[1:])
        sent.append(riders[0])
    return sent


class _PgTx(Tx):
    """One transaction in psycopg's pipeline mode. Statements are held back until an answer
    is wanted or the transaction commits, then go out together, and their answers come back
    in one round trip. One whose answer is wanted before the commit opens a transaction
    block (BEGIN) first; when none is, the statements go out only at the commit, without
    BEGIN or COMMIT: PostgreSQL runs the statements before a Sync as one implicit
    transaction, committed at the Sync, all rolled back if one fails (see "Pipelining" in
    PostgreSQL's protocol docs). That saves two statements a transaction, each a message
    and a wake-up of the server. psycopg takes ``%s`` placeholders and timezone-aware
    datetimes as they are; without a pipeline (migrations) every statement runs at once,
    in a block begun at once."""

    folds_writes = True

    def __init__(self, conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline | None) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._unread: list[Pending] = []
        self._held: list[_Queued] = []
        self._in_block = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        return self.later(sql, params).result()

    def later(self, sql: str, params: Sequence[Any] = ()) -> Pending:
        statement = _Queued(sql.replace("?", "%s"), list(params))
        self._held.append(statement)
        if self._pipeline is None:
            self._send_held()
        pending = Pending(lambda: self._answer(statement))
        self._unread.append(pending)
        return pending

    def along(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._pipeline is None:
            self.later(sql, params)
        else:
            self._held.append(_Queued(sql.replace("?", "%s"), list(params), riding=True))

    def _send_held(self) -> None:
        """Send the statements held back, in order (in a pipeline, as one batch)."""
        for statement in _with_riders(self._held):
            statement.cursor = self._conn.cursor()
            statement.cursor.execute(statement.sql, statement.params)
        self._held.clear()

    def _open_block(self) -> None:
        """BEGIN, before anything held back: an answer read before the commit needs the
        rest of the transaction to stay open after it (the connections are in autocommit
        mode, so psycopg sends no BEGIN of its own)."""
        if not self._in_block:
            self._in_block = True
            self._conn.cursor().execute(b"BEGIN", prepare=False)

    def _answer(self, statement: _Queued) -> Result:
        if statement.cursor is None:  # wanted before the commit
            self._open_block()
            self._send_held()
        cursor = statement.cursor
        assert cursor is not None
        if cursor.pgresult is None and self._pipeline is not None:
            self._pipeline.sync()  # not back yet: send what is queued, read every answer
        rows = cursor.fetchall() if cursor.description is not None else []
        return rows, cursor.rowcount

    def begin(self, left: float | None, locks: Collection[str]) -> None:
        """Hold back a caller's time limit as the statement timeout, and the transaction's
        advisory locks: they go out with its first statements."""
        if self._pipeline is None:
            self._open_block()
        if left is not None:
            timeout_ms = max(1, int(left * 1000))  # 0 would mean no limit
            self.later("SELECT set_config('statement_timeout', ?, true)", (f"{timeout_ms}ms",))
        if locks:
            # Taken in hash order, the same in every process, so two requests with
            # overlapping recipients cannot deadlock; one statement for a page's thousands
            # of keys (the aggregate takes them row by row in the subquery's order).
            self.later(
                "SELECT count(pg_advisory_xact_lock(h)) FROM ("
                "SELECT DISTINCT hashtext(k)::bigint AS h FROM unnest(?::text[]) AS k "
                "ORDER BY h) AS ordered",
                (sorted(locks),),
            )

    def commit(self) -> None:
        """Send what is held back and, in a block, COMMIT after it; in a pipeline they go
        out, with one Sync, when it closes (psycopg sends a Sync then in any case), and
        without a block that Sync is the commit."""
        self._send_held()
        if self._in_block:
            self._conn.cursor().execute(b"COMMIT", prepare=False)

    def read_answers(self) -> None:
        """Read every answer after the pipeline closed, so none waits on the connection."""
        for pending in self._unread:
            pending.result()


def _describe_postgres(url: str) -> tuple[str, list[str]]:
    """``user@host:port/db`` for messages, and the password's spellings to scrub from errors."""
    parts = urlsplit(url)
    secrets = [s for s in {parts.password or "", unquote(parts.password or "")} if s]
    try:
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "PostgreSQL (malformed DATABASE_URL)", secrets
    user = f"{unquote(parts.username)}@" if parts.username else ""
    return f"PostgreSQL {user}{host}:{port}{unquote(parts.path)}", secrets


def _scrub(text: str, secrets: list[str]) -> str:
    """One line, without the password, whatever libpq chose to echo."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return " ".join(text.split())


def _lost_connection(exc: psycopg.Error) -> bool:
    """No SQLSTATE, class 08, or a server shutting down (57P…): the connection is gone, and
    with it the news of how a transaction ended. Any other error is a statement's own,
    which rolled its transaction back."""
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))


def _soonest(group: Sequence[Checked[Any, Any]]) -> Checked[Any, Any]:
    """The call that must be answered first."""
    return min(group, key=lambda call: call.context.run(answer_by))


class PostgresStore(Store):
    """A PostgreSQL database shared by any number of app processes. Cross-process exclusion
    uses transaction-scoped advisory locks, released by commit or rollback (or a crash)."""

    shared = True
    # Only Grouped calls share a batch (see ``run_batch``).
    groups_only = True

    _dialect: ClassVar[dict[str, str]] = {
        "ts": "TIMESTAMPTZ",
        "serial_pk": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    }

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_size: int = WORKERS + 1,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(clock=clock)
        # A connection per store thread, and one for callers from outside them (the
        # readiness probe).
        self.connections = max_size
        self.workers = min(WORKERS, max_size)
        # When each pooled connection last finished a transaction (see _check_if_idle).
        self._last_used: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self.target, self._secrets = _describe_postgres(url)
        self._down = False  # see _DOWN_WAIT
        self._pipelined = True  # see _PgTx; migrate turns it off while it runs
        # One direct connection first: the pool only reports a timeout, this gives the reason.
        try:
            psycopg.connect(url, connect_timeout=max(2, int(timeout))).close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.target}: {self.scrub(str(exc))}") from None
        # Opened full, and kept so: a connection opened while Slack waits for an ack (the
        # first burst after a start or a quiet spell) costs a connect, and a remote server's
        # TLS handshake on top.
        self._pool = ConnectionPool(
            url,
            min_size=max_size,
            max_size=max_size,
            open=False,
            timeout=timeout,
            # Transactions are begun and committed by hand (see _PgTx); a rollback is the
            # pool's, when a connection comes back inside a transaction.
            # Every statement is prepared on its first use: a burst after a start would
            # otherwise have the server parse and plan the first five of each, per
            # connection (psycopg's default), and its acks wait for that.
            kwargs={
                "connect_timeout": max(2, int(timeout)),
                "autocommit": True,
                "prepare_threshold": 0,
            },
            check=self._check_if_idle,
            reconnect_timeout=_RECONNECT_FOR,
            name="sms-bridge-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout:
            self._pool.close()
            raise StoreError(
                f"cannot connect to {self.target}: no connection within {timeout:g}s"
            ) from None

    def scrub(self, text: str) -> str:
        return _scrub(text, self._secrets)

    def _check_if_idle(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check before lending a connection: one that finished a transaction
        within ``_TRUSTED_FOR`` seconds is lent as it is, one that sat longer (the server
        may have restarted, a firewall may have dropped it) is tried first. Checking every
        loan would add a round trip to each of a send's three transactions."""
        if time.monotonic() - self._last_used.get(conn, float("-inf")) >= _TRUSTED_FOR:
            try:
                ConnectionPool.check_connection(conn)
            except psycopg.Error:
                self._recheck_pool()
                raise

    @contextmanager
    def _transaction(self, *, write: bool, locks: Collection[str] = ()) -> Iterator[Tx]:
        # While Slack waits, the connection, every statement and any lock wait get only the
        # time left, and the server gives up on its side too: a transaction that outlives its
        # caller is cancelled rather than committed late.
        left = time_left()
        committing = False
        try:
            with self._loan(left) as conn:
                with conn.pipeline() if self._pipelined else nullcontext() as pipeline:
                    tx = _PgTx(conn, pipeline)
                    tx.begin(left, locks)
                    yield tx
                    time_left()  # still wanted? If not, roll back instead of committing
                    committing = True
                    tx.commit()  # in a pipeline, sent as it closes: no Sync of its own
                tx.read_answers()
                self._last_used[conn] = time.monotonic()
                self._down = False
        except PoolTimeout:
            self._down = True
            raise StoreError(f"{self.target}: no database connection available") from None
        except psycopg.OperationalError as exc:
            self._after_failure(exc)
            message = self.scrub(str(exc))
            if committing and _lost_connection(exc):  # else a statement's own failure
                raise CommitUnknown(f"{self.target}: {message}") from exc
            raise StoreError(f"{self.target}: {message}") from exc

    @contextmanager
    def _loan(self, left: float | None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, as the pool's own ``connection()`` lends it, waited for
        within the caller's time left (None: the pool's timeout)."""
        conn = self._borrow(left)
        try:
            with conn:
                yield conn
        finally:
            self._pool.putconn(conn)

    def _borrow(self, left: float | None) -> psycopg.Connection[Any]:
        """Wait in turns of at most ``_DOWN_WAIT``, and give up after one ends with the
        database known down: the pool's own wait would go on to its end even when the
        first check of its loan found the outage (a second's pause, then the rest of its
        timeout for a new connection), and hold a store thread for all of it."""
        deadline = time.monotonic() + (self._pool.timeout if left is None else left)
        while True:
            turn = min(deadline - time.monotonic(), _DOWN_WAIT)
            try:
                return self._pool.getconn(timeout=max(turn, 0.0))
            except PoolTimeout:
                if self._down or time.monotonic() >= deadline:
                    raise

    def run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[CallOutcome]:
        """Run ``calls`` in order: each run of ``Grouped`` ones, and each of ``Checked``
        ones, in one transaction, their statements out together and committed by one Sync:
        one round trip and one commit for them all (and one more round trip for the checks'
        answers), which alone cost the app and the server several times what a statement
        does (docs/performance.md); any other call in a transaction of its own, as outside
        a batch."""
        outcomes: list[CallOutcome] = []
        for kind, run in groupby(calls, key=group_kind):
            if kind is Grouped:
                outcomes += self._run_grouped(cast(list[Grouped[Any]], list(run)))
            elif kind is Checked:
                outcomes += self._run_checked(cast(list[Checked[Any, Any]], list(run)))
            else:
                outcomes += each_alone(list(run))
        return outcomes

    def _run_grouped(self, group: Sequence[Grouped[Any]]) -> list[CallOutcome]:
        """One transaction for ``group``. A failure before the commit leaves nothing of it
        (its statements were one implicit transaction, undone whole), so each call is then
        run again alone, to give it its own outcome; a commit whose fate is unknown is
        every call's outcome."""
        if len(group) < 2:
            return each_alone(group)
        try:
            with self._transaction(write=True) as tx:
                reads = [call.queue(tx) for call in group]
        except CommitUnknown as exc:
            return [CallOutcome(error=exc) for _ in group]
        except Exception:  # one call's failure, or the server's: nothing was kept
            return each_alone(group)
        return each_alone(reads)

    def _run_checked(self, group: Sequence[Checked[Any, Any]]) -> list[CallOutcome]:
        """One transaction for ``group``, as ``_run_grouped``; a refusal is a failure that
        rolls the group back too. It runs in the context of the call with the least time
        left, whose limit is the transaction's, holding every call's locks from the start."""
        if len(group) < 2:
            return each_alone(group)
        checked: list[Any] = []
        try:
            _soonest(group).context.run(self._check_together, group, checked)
        except CommitUnknown as exc:
            return [
                CallOutcome(error=call.unknown(each, exc))
                for call, each in zip(group, checked, strict=True)
            ]
        except Exception:  # a refusal, one call's failure or the server's: nothing was kept
            return each_alone(group)
        settles = [partial(call.settle, each) for call, each in zip(group, checked, strict=True)]
        return each_alone(settles)

    def _check_together(self, group: Sequence[Checked[Any, Any]], checked: list[Any]) -> None:
        """Queue every call's statements, then check each one's answers, into ``checked``."""
        locks = {lock for call in group for lock in call.locks}
        with self._transaction(write=True, locks=locks) as tx:
            checks = [call.queue(tx) for call in group]
            checked.extend(check() for check in checks)

    def _recheck_pool(self) -> None:
        """One broken connection (a server restart) suggests the others are broken too:
        check every idle one now and replace the broken, so only the calls in flight fail.
        Left to the loans, the pool would hand out one dead connection after another, with
        a growing pause between them: seconds of refusals with a full pool."""
        self._down = True
        self._last_used.clear()
        self._pool.check()

    def _after_failure(self, exc: psycopg.OperationalError) -> None:
        """A lost connection (no SQLSTATE, class 08, or a server shutting down: 57P…)
        makes the pool check the others now; a statement's own failure (a timeout, a lock)
        only has each checked before its next loan."""
        if _lost_connection(exc):
            self._recheck_pool()
        else:
            self._last_used.clear()

    def migrate(self) -> None:
        """Outside pipeline mode: after an ALTER or a DROP psycopg forgets its prepared
        statements, and in a pipeline it drops the next one prepared along with them."""
        self._pipelined = False
        try:
            super().migrate()
        finally:
            self._pipelined = True

    def _lock_migrations(self, tx: Tx) -> None:
        tx.run(
            "SELECT pg_advisory_xact_lock(hashtext('sms-bridge:migrate:' "
            "|| COALESCE(current_schema(), '')))"
        )

    def close(self) -> None:
        self._pool.close()
