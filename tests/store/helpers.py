"""What the store tests share: recipients, a fake clock, a backend handle, and small drivers.

Concurrency tests open one store per thread (separate connections, separate pools on Postgres)
to stand in for separate app processes. The fake clock moves time, so nothing sleeps.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg

from bot.store import (
    NewRecipient,
    NewRequest,
    PendingInbound,
    RequestState,
    Store,
    StoredRequest,
    open_store,
)

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


def inbound(
    uuid: str, contact: str, sent_at: datetime, request_id: str | None = None, kind: str = "reply"
) -> PendingInbound:
    """An inbound SMS on channel SMS1 from the main number, as the poller records it."""
    return PendingInbound(
        uuid, "SMS1", contact, "+17137157533", "hello", None, kind, sent_at, request_id
    )


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
