"""CPU of the store path alone: ``.venv/bin/python -m bench.store_cost``.

One single-recipient send costs three store round trips (record, claim, finish); this runs
exactly those calls in a loop, with nothing else in the process, on SQLite (a file on disk,
every commit synced, as the app runs it) and on the local PostgreSQL, and prints the CPU
time and the statements per send. It is the least the send path can cost with the store's
durability, whatever the rest of the app does.
"""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.harness import postgres_schema
from bot.store import NewRecipient, NewRequest, RateLimits, Store, open_store

SENDS = 1000
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


def one_send(store: Store, index: int) -> None:
    """What a single-recipient /sms asks of the store, in the order the app asks it."""
    claims = [(f"slack-signature:{index}:{time.time_ns()}", timedelta(minutes=6))]
    recorded = store.record_request(
        new_request(), limits=LIMITS, claims=claims, start=("holder", timedelta(seconds=30))
    )
    assert recorded is not None
    send = recorded.sends[0]
    store.claim_send(send.id, thread=(recorded.request.id, "C0BENCH", "1.000001"))
    store.finish_last_send(send.id, (recorded.request.id, "holder"), message_id="bench")


def cpu_per_send(store: Store) -> float:
    """Milliseconds of this process's CPU per send, after a warm-up."""
    for index in range(100):
        one_send(store, index)
    began = time.process_time()
    for index in range(SENDS):
        one_send(store, index)
    return (time.process_time() - began) * 1000 / SENDS


def measure(name: str, url: str) -> None:
    store = open_store(url)
    try:
        print(f"| {name} | {cpu_per_send(store):.2f} ms |", flush=True)
    finally:
        store.close()


def main() -> None:
    print(f"CPU per single-recipient send, store calls only ({SENDS} sends)\n")
    print("| backend | CPU per send |")
    print("|---|---|")
    with tempfile.TemporaryDirectory() as work:
        measure("SQLite (a file, every commit synced)", f"sqlite:///{Path(work) / 'bench.db'}")
    with postgres_schema() as url:
        measure("PostgreSQL on 127.0.0.1", url)


if __name__ == "__main__":
    main()
