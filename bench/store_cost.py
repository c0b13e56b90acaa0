"""CPU of the store path alone: ``.venv/bin/python -m bench.store_cost``.

One single-recipient send costs four store calls (record, claim, finish, landed); this runs
exactly those calls in a loop, with nothing else in the process, on SQLite (a file on disk,
every commit synced, as the app runs it) and on the local PostgreSQL, and prints the CPU
time per send; on PostgreSQL with the server's beside it (the sessions of this process's
connections, warm-up included, and the cluster's writers). On SQLite it also runs them as
the app's store thread does under load, 20 sends' records in one batch under one commit,
then their claims, their finishes, then their outcomes landed; and it prints that batched
cost block by block over 30,000 sends, to show whether a send costs more as history grows.
On PostgreSQL the batched row runs the records one by one, as the app does, and the
claims, the finishes and the outcomes landed in one transaction each (``Grouped`` calls).
``python -m bench.store_cost postgres`` runs the PostgreSQL rows alone, for comparing
alternating runs of two versions without the SQLite rows in between.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

from bench.harness import ServerCpu, postgres_schema
from bot.store import NewRecipient, NewRequest, RateLimits, Recorded, Store, open_store
from bot.store.batch import BatchingStore, Grouped

SENDS = 1000
WARM_UP = 100
IN_FLIGHT = 20  # the app's throughput benchmark: 20 clients
GROWTH_BLOCK, GROWTH_BLOCKS = 2500, 12
LIMITS = RateLimits(10**6, 10**6)


def new_request() -> NewRequest:
    return NewRequest(
        kind="sms",
        sender="U0BENCH",
        channel_id="C0BENCH",
        from_name="main",
        from_number="+17137157533",
        recipients=(NewRecipient("+447700900123", "alice"),),
        text="bench",
        segments=1,
        encoding="GSM-7",
    )


def record(store: Store, index: int) -> Recorded:
    claims = [(f"slack-signature:{index}:{time.time_ns()}", timedelta(minutes=6))]
    recorded = store.record_request(
        new_request(), limits=LIMITS, claims=claims, start=("holder", timedelta(seconds=30))
    )
    assert recorded is not None
    return recorded


def claim(store: Store, recorded: Recorded) -> Grouped[bool]:
    return store.claiming(recorded.sends[0].id, thread=(recorded.request.id, "C0BENCH", "1.1"))


def finish(store: Store, recorded: Recorded) -> Grouped[tuple[bool, bool]]:
    lease = (recorded.request.id, "holder")
    return store.finishing_last(recorded.sends[0].id, lease, message_id="bench")


def landed(store: Store, recorded: Recorded) -> Grouped[None]:
    return store.landing(recorded.request.id, "holder")


def one_send(store: Store, index: int) -> None:
    """What a single-recipient /sms asks of the store, in the order the app asks it."""
    recorded = record(store, index)
    for step in (claim, finish, landed):
        step(store, recorded)()  # alone, as Store.claim_send and the others run it


def batched_sends(store: Store, first: int) -> None:
    """``IN_FLIGHT`` sends' calls as the app's store threads run them under load: the
    records in one batch, then the claims in one, the finishes in one, the outcomes landed
    in one."""
    assert isinstance(store, BatchingStore)
    indexes = range(first, first + IN_FLIGHT)
    records = store.run_batch([partial(record, store, index) for index in indexes])
    started = [outcome.value for outcome in records]
    for step in (claim, finish, landed):
        store.run_batch([step(store, recorded) for recorded in started])


def timed_sends(store: Store, first: int, count: int, batched: bool) -> float:
    """Milliseconds of this process's CPU per send for ``count`` sends from ``first``, one
    call at a time or, ``batched``, as ``batched_sends`` runs them."""
    began = time.process_time()
    if batched:
        for start in range(first, first + count, IN_FLIGHT):
            batched_sends(store, start)
    else:
        for index in range(first, first + count):
            one_send(store, index)
    return (time.process_time() - began) * 1000 / count


def cpu_per_send(store: Store, batched: bool = False) -> float:
    """Milliseconds of this process's CPU per send, after a warm-up."""
    timed_sends(store, 0, WARM_UP, batched)
    return timed_sends(store, WARM_UP, SENDS, batched)


def measure(name: str, url: str, batched: bool = False) -> None:
    """One row: this process's CPU per send and, on PostgreSQL, the server's beside it."""
    store = open_store(url)
    try:
        server = ServerCpu.of(url)
        before = server.read() if server else {}
        ours = cpu_per_send(store, batched)
        if server is None:
            print(f"| {name} | {ours:.2f} ms | | |", flush=True)
            return
        sessions, writers = (seconds * 1000 / (SENDS + WARM_UP) for seconds in server.used(before))
        total = ours + sessions + writers
        print(f"| {name} | {ours:.2f} ms | {sessions:.2f} + {writers:.2f} ms | {total:.2f} ms |")
    finally:
        store.close()


def growth(url: str, blocks: int = GROWTH_BLOCKS) -> list[float]:
    """CPU per send (ms) of each block of ``GROWTH_BLOCK`` batched sends on one database,
    as its history grows: a cost that grows with the tables shows as a rising row, here
    without the noise of the whole app and its load generator sharing two CPUs."""
    store = open_store(url)
    try:
        return [
            timed_sends(store, block * GROWTH_BLOCK, GROWTH_BLOCK, batched=True)
            for block in range(blocks)
        ]
    finally:
        store.close()


def postgres_rows() -> None:
    """One call at a time, then as the app runs them with ``IN_FLIGHT`` sends in flight."""
    with postgres_schema() as url:
        measure("PostgreSQL on 127.0.0.1", url)
    with postgres_schema() as url:
        measure(f"PostgreSQL, {IN_FLIGHT} sends in flight: each step grouped", url, True)


def main() -> None:
    print(f"CPU per single-recipient send, store calls only ({SENDS} sends)\n")
    print("| backend | CPU per send, this process | server: its sessions + writers | together |")
    print("|---|---|---|---|")
    if sys.argv[1:] == ["postgres"]:
        postgres_rows()
        return
    with tempfile.TemporaryDirectory() as work:
        measure("SQLite (a file, every commit synced)", f"sqlite:///{Path(work) / 'bench.db'}")
        measure(
            f"SQLite, {IN_FLIGHT} sends in flight: each step's calls in one batch",
            f"sqlite:///{Path(work) / 'batched.db'}",
            batched=True,
        )
    postgres_rows()
    with tempfile.TemporaryDirectory() as work:
        per_block = growth(f"sqlite:///{Path(work) / 'growth.db'}")
    print(
        f"\nSQLite, batched, as history grows to {GROWTH_BLOCK * GROWTH_BLOCKS:,} sends, CPU "
        f"per send by {GROWTH_BLOCK:,}-send block: {', '.join(f'{ms:.2f}' for ms in per_block)} ms"
    )


if __name__ == "__main__":
    main()
