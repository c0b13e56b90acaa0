"""SQLite's batches: calls that queue up share one transaction and one commit, each in a
savepoint of its own; nothing of a call is handed back, or handed over, before the commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.errors import CommitUnknown, StoreError
from bot.sending.store_calls import store_calls
from bot.store import Store, open_store
from bot.store.batch import CallOutcome, Checked
from bot.store.core import answer_within
from bot.store.recording import Ticket
from bot.store.sqlite import SqliteStore
from tests.store.helpers import new_request


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bridge.db"


@pytest.fixture
def store(db_path: Path) -> Any:
    opened = open_store(f"sqlite:///{db_path}")
    assert isinstance(opened, SqliteStore)
    yield opened
    opened.close()


def texts_committed(db_path: Path) -> list[str]:
    """What another connection (another process) sees: committed rows only."""
    with sqlite3.connect(db_path) as conn:
        return [text for (text,) in conn.execute("SELECT text FROM requests ORDER BY text")]


def text_of(store: Store, request_id: str) -> str:
    request = store.get_request(request_id)
    assert request is not None
    return request.text


def record(store: Store, text: str) -> Callable[[], str]:
    return lambda: store.create_request(new_request(text=text)).id


def answering(call: Callable[[], str], within: float) -> Callable[[], str]:
    """``call`` as a Slack request's store call: its answer is due ``within`` seconds."""

    def run() -> str:
        with answer_within(within):
            return call()

    return run


def test_a_batch_is_committed_once_for_all_its_calls(store: SqliteStore, db_path: Path) -> None:
    seen_mid_batch: list[list[str]] = []

    def look() -> None:
        seen_mid_batch.append(texts_committed(db_path))

    outcomes = store.run_batch([record(store, "a"), record(store, "b"), look])

    assert [o.error for o in outcomes] == [None, None, None]
    assert seen_mid_batch == [[]]  # a and b were not yet committed while the batch ran
    assert texts_committed(db_path) == ["a", "b"]


def test_a_call_failing_in_its_transaction_takes_back_only_its_own_writes(
    store: SqliteStore, db_path: Path
) -> None:
    def fail_after_writing() -> None:
        with store._transaction(write=True) as tx:
            tx.run("INSERT INTO leases (name, holder, expires_at) VALUES ('x', 'h', 't')")
            raise ValueError("a bug in the caller")

    outcomes = store.run_batch(
        [
            record(store, "a"),
            fail_after_writing,
            record(store, "c"),
        ]
    )

    assert isinstance(outcomes[1].error, ValueError)
    assert outcomes[0].error is None and outcomes[2].error is None
    assert texts_committed(db_path) == ["a", "c"]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM leases").fetchone() == (0,)


def test_a_request_is_handed_over_only_once_committed(store: SqliteStore) -> None:
    """A caller that stops waiting after the request was recorded but before the batch
    committed must not be handed it: the request is expired instead, never sent."""
    ticket = Ticket()
    recorded: list[str] = []

    def record_with_ticket() -> None:
        recorded.append(store.create_request(new_request(text="a"), ticket=ticket).id)

    handed_over_mid_batch: list[object] = []
    outcomes = store.run_batch(
        [
            record_with_ticket,
            lambda: handed_over_mid_batch.append(ticket.abandon()),
        ]
    )

    assert [o.error for o in outcomes] == [None, None]
    assert handed_over_mid_batch == [None]  # the caller gave up: nothing was handed over
    request = store.get_request(recorded[0])
    assert request is not None and request.state == "expired"


def test_a_ticket_is_handed_over_after_the_commit(store: SqliteStore) -> None:
    ticket = Ticket()
    outcomes = store.run_batch([lambda: store.create_request(new_request(text="a"), ticket=ticket)])
    assert outcomes[0].error is None
    handed = ticket.abandon()  # too late to abandon: it was handed over at the commit
    assert handed is not None and handed.request.id == outcomes[0].value.id


def test_a_failed_commit_fails_every_call(store: SqliteStore, db_path: Path) -> None:
    def orphan_send() -> None:
        # A foreign key checked at commit: the commit itself fails.
        with store._transaction(write=True) as tx:
            tx.run("PRAGMA defer_foreign_keys = ON")
            tx.run(
                "INSERT INTO sends (request_id, number, state, attempts, created_at, "
                "updated_at) VALUES ('no-such-request', '+447700900123', 'queued', 0, "
                "'2025-01-01', '2025-01-01')"
            )

    outcomes = store.run_batch([record(store, "a"), orphan_send])

    assert all(isinstance(o.error, StoreError) for o in outcomes)
    assert "nothing of this batch was kept" in str(outcomes[0].error)
    assert texts_committed(db_path) == []
    assert store.create_request(new_request(text="after")).text == "after"  # the store goes on


def test_a_lock_held_elsewhere_fails_the_answer_due_and_not_the_background(
    store: SqliteStore, db_path: Path
) -> None:
    """Another process holds the write lock past the soonest answer: that call is refused
    in time, and the background call waits its own long wait and gets through."""
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.5, lambda: other.execute("ROLLBACK"))
    releaser.start()
    try:
        began = time.monotonic()
        outcomes = store.run_batch(
            [
                answering(record(store, "answer"), within=0.1),
                record(store, "background"),
            ]
        )
    finally:
        releaser.join()
        other.close()

    assert isinstance(outcomes[0].error, StoreError)
    assert outcomes[1].error is None
    assert time.monotonic() - began >= 0.4  # the background call did wait for the lock
    assert texts_committed(db_path) == ["background"]


class CountingStore(SqliteStore):
    """Counts batches, and holds the first one until told, so that calls queue behind it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.batches: list[int] = []
        self.release_first = threading.Event()

    def run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[CallOutcome]:
        if not self.batches:
            self.release_first.wait(5)
        self.batches.append(len(calls))
        return super().run_batch(calls)


async def test_calls_that_queue_up_run_as_one_batch(db_path: Path) -> None:
    store = CountingStore(str(db_path))
    store.migrate()
    calls = store_calls(store)
    try:
        first = asyncio.ensure_future(calls.call(lambda: "first"))
        await asyncio.sleep(0.05)  # the thread has taken the first call and holds it
        rest = [asyncio.ensure_future(calls.call(lambda i=i: i)) for i in range(20)]
        doomed = asyncio.ensure_future(calls.call(lambda: "nobody waits"))
        await asyncio.sleep(0.05)
        doomed.cancel()
        store.release_first.set()

        assert await first == "first"
        assert await asyncio.gather(*rest) == list(range(20))
        assert store.batches == [1, 21]  # the twenty and the cancelled one: one batch
    finally:
        calls.close()
        store.close()


async def test_an_error_reaches_only_its_own_caller(db_path: Path) -> None:
    store = open_store(f"sqlite:///{db_path}")
    assert isinstance(store, SqliteStore)
    calls = store_calls(store)

    def fail() -> None:
        raise LookupError("not there")

    try:
        results = await asyncio.gather(
            calls.call(lambda: 1), calls.call(fail), calls.call(lambda: 3), return_exceptions=True
        )
        assert results[0] == 1 and results[2] == 3
        assert isinstance(results[1], LookupError)
    finally:
        calls.close()
        store.close()


async def test_calls_queued_before_close_are_answered_and_later_ones_refused(
    db_path: Path,
) -> None:
    store = CountingStore(str(db_path))
    store.migrate()
    calls = store_calls(store)
    try:
        queued = [asyncio.ensure_future(calls.call(lambda i=i: i)) for i in range(3)]
        await asyncio.sleep(0.05)
        calls.close()
        store.release_first.set()
        assert await asyncio.gather(*queued) == [0, 1, 2]
        with pytest.raises(RuntimeError, match="closed"):
            await calls.call(lambda: "too late")
    finally:
        store.close()


def test_a_read_waits_for_no_other_process(store: SqliteStore, db_path: Path) -> None:
    """As outside a batch, a read before the batch's first write needs no write lock: it
    is answered while another process holds that lock."""
    request_id = store.create_request(new_request(text="a")).id
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        outcomes = store.run_batch([answering(lambda: text_of(store, request_id), within=0.5)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert outcomes[0].error is None and outcomes[0].value == "a"


class _CommitLost(Checked[str, str]):
    """A checked write whose commit's fate is never known (the connection went at the
    commit), noting what it was told; ``refusing`` makes telling it fail."""

    def __init__(self, refusing: bool = False) -> None:
        super().__init__(self._losing_the_commit)
        self.told: list[str] = []
        self._refusing = refusing

    @contextmanager
    def _losing_the_commit(self, *, write: bool, locks: Collection[str]) -> Iterator[Any]:
        yield None
        raise CommitUnknown("the connection went at the commit")

    def queue(self, tx: Any) -> Callable[[], str]:
        return lambda: "checked"

    def settle(self, checked: str) -> str:
        return checked

    def unsettled(self, checked: str) -> None:
        self.told.append(checked)
        if self._refusing:
            raise RuntimeError("could not expire it")


def test_a_checked_write_whose_commit_is_lost_is_told_so_and_fails_with_it() -> None:
    """As a record is expired when its commit may have landed unseen: ``unsettled`` is told
    what was checked, and the caller hears the commit was lost, or why telling failed."""
    lost = _CommitLost()
    with pytest.raises(CommitUnknown):
        lost()
    assert lost.told == ["checked"]
    refusing = _CommitLost(refusing=True)
    with pytest.raises(RuntimeError) as caught:
        refusing()
    assert refusing.told == ["checked"]
    assert isinstance(caught.value.__context__, CommitUnknown)
