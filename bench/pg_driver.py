"""The store's thread hop against an async driver: ``.venv/bin/python -m bench.pg_driver``.

The performance requirement wants the database off the per-call thread hop, "one DB worker
thread per process or an async driver", both measured; only the threads were. A
single-recipient send costs three store transactions (record, claim, finish). In one event
loop with IN_FLIGHT sends at once, this runs them (a) as the app does, the real
``PostgresStore`` methods on ``Services.db``'s threads, and (b) on the loop with psycopg's
``AsyncConnectionPool``, executing a transcription of the same statements
(``bench.pg_transcript``) that is checked against the store's own, statement by statement,
before anything is timed. It prints this process's CPU per send, sends/s and latency. Not
part of the test suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from unittest import mock

import psycopg

from bench.harness import postgres_schema
from bench.pg_transcript import AsyncTranscript
from bot.sending.services import Services
from bot.sending.workflow import ANSWER_DEADLINE
from bot.store import NewRecipient, NewRequest, PostgresStore, RateLimits, open_store
from bot.store.core import answer_within
from bot.store.requests import Ticket

SENDS, WARMUP, IN_FLIGHT, ROUNDS = 2000, 100, 20, 3  # ROUNDS of each, alternating a, b, a, b…
LIMITS = RateLimits(10**6, 10**6)
HOLDER, LEASE_TTL, THREAD = "bench-holder", timedelta(seconds=30), ("C0BENCH", "1.000001")
INDEXES = itertools.count()  # unique per send, for the Slack-signature claim
SendFn = Callable[[int, int], Awaitable[None]]
Seen = list[list[tuple[str, int]]]  # per transaction: (statement, parameter count)
TRANSACTIONS = ("record_request", "claim_send", "finish_last_send")
HEADER = "| run | variant | CPU ms/send | sends/s | p50 ms | p99 ms | connections |\n|" + "---|" * 7


def new_request(worker: int) -> NewRequest:
    """One SMS to one number. Each in-flight worker has its own sender and recipient, as
    people sending at once would, so the sends do not all queue on one rate-limit lock."""
    return NewRequest(
        kind="sms",
        sender=f"U0BENCH{worker:02d}",
        channel_id="C0BENCH",
        from_name="main",
        from_number="+17137157533",
        recipients=(NewRecipient(f"+4477009{worker:05d}", "alice"),),
        text="bench",
        segments=1,
        encoding="GSM-7",
    )


def claims(index: int) -> list[tuple[str, timedelta]]:
    """The Slack signature each /sms claims, unique as a real one is."""
    return [(f"slack-signature:{index}:{time.time_ns()}", timedelta(minutes=6))]


def sends_through(call: Callable[..., Awaitable[Any]], store: Any) -> SendFn:
    """One send's three store calls in the app's order, each awaited through ``call``: the
    record under the Slack answer's time budget, as ``Workflow.submit`` runs it."""

    async def send(worker: int, index: int) -> None:
        async with asyncio.timeout(ANSWER_DEADLINE):
            with answer_within(ANSWER_DEADLINE):
                recorded = await call(
                    store.record_request,
                    new_request(worker),
                    limits=LIMITS,
                    ticket=Ticket(),
                    claims=claims(index),
                    start=(HOLDER, LEASE_TTL),
                )
        assert recorded is not None
        send_id, request_id = recorded.sends[0].id, recorded.request.id
        await call(store.claim_send, send_id, thread=(request_id, *THREAD))
        await call(store.finish_last_send, send_id, (request_id, HOLDER), message_id="x")

    return send


def awaited(method: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """(b) The async driver's way: the transcription's coroutine, awaited on the loop."""
    return method(*args, **kwargs)


@contextlib.contextmanager
def statements_seen() -> Iterator[Seen]:
    """Every statement psycopg's cursors run, sync or async, grouped by the commit that
    ends its transaction: counted at the driver, the same way for both variants. The
    pool's liveness check, an empty query, is seen too."""
    seen: Seen = [[]]
    execute, aexecute = psycopg.Cursor.execute, psycopg.AsyncCursor.execute
    commit, acommit = psycopg.Connection.commit, psycopg.AsyncConnection.commit

    def note(query: Any, params: Any) -> None:
        if isinstance(query, bytes) and query.startswith(b"BEGIN"):  # its values vary
            query = f"BEGIN and {query.count(b';')} more"
        seen[-1].append((str(query), len(params or ())))

    def counted(cursor: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        note(query, params)
        return execute(cursor, query, params, **kw)

    async def acounted(cursor: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        note(query, params)
        return await aexecute(cursor, query, params, **kw)

    def ended() -> None:  # the pool's own commit on return finds nothing to commit
        if seen[-1]:
            seen.append([])

    def committed(conn: Any) -> None:
        commit(conn)
        ended()

    async def acommitted(conn: Any) -> None:
        await acommit(conn)
        ended()

    with contextlib.ExitStack() as patches:
        for owner, name, new in (
            (psycopg.Cursor, "execute", counted),
            (psycopg.AsyncCursor, "execute", acounted),
            (psycopg.Connection, "commit", committed),
            (psycopg.AsyncConnection, "commit", acommitted),
        ):
            patches.enter_context(mock.patch.object(owner, name, new))
        yield seen
    seen.pop()  # what the last commit opened


async def statement_shape(variants: dict[str, SendFn]) -> None:
    """Print the statements of one send as the store runs them, and stop unless the
    transcription runs the same ones (same text, same parameter count, same order)."""
    shapes: dict[str, Seen] = {}
    checks: dict[str, int] = {}
    for name, send in variants.items():
        await send(0, next(INDEXES))  # so the counted send gets a recently used connection
        with statements_seen() as seen:
            await send(0, next(INDEXES))
        shapes[name] = [[s for s in tx if s[0]] for tx in seen]
        checks[name] = sum(1 for tx in seen for s in tx if not s[0])
    store, transcript = shapes.values()
    print("Statements per transaction of one send, counted at psycopg's cursor (the first")
    print("is BEGIN and what goes with it; psycopg sends COMMIT after the last):\n")
    print("| transaction | statements | round trips with COMMIT |\n|---|---|---|")
    for name, statements in zip(TRANSACTIONS, store, strict=True):
        print(f"| {name} | {len(statements)} | {len(statements) + 1} |")
    print()
    for name, statements in zip(TRANSACTIONS, store, strict=True):
        for sql, count in statements:
            print(f"  {name:<16} {count:>2} params  {' '.join(sql.split())[:76]}")
    same = store == transcript
    print(f"\nTranscription runs the same statements, parameter counts and order: {same}")
    print(f"Pool liveness checks during the counted send: {checks}\n")
    if not same:
        raise SystemExit("bench/pg_transcript.py no longer matches the store: update it")


@dataclass
class Run:
    """One timed run of one variant, or the medians of several."""

    variant: str
    cpu_ms: float  # this process's CPU per send, every thread
    per_second: float
    p50_ms: float
    p99_ms: float
    connections: int  # the pool's size at the end of the run

    def row(self, label: str) -> str:
        return (
            f"| {label} | {self.variant} | {self.cpu_ms:.3f} | {self.per_second:.0f} | "
            f"{self.p50_ms:.2f} | {self.p99_ms:.2f} | {self.connections} |"
        )


async def drive(send: SendFn, count: int) -> list[float]:
    """``count`` sends, IN_FLIGHT tasks at a time; each send's seconds, all three calls."""
    indexes = itertools.islice(INDEXES, count)
    latencies: list[float] = []

    async def worker(number: int) -> None:
        for index in indexes:
            began = time.perf_counter()
            await send(number, index)
            latencies.append(time.perf_counter() - began)

    async with asyncio.TaskGroup() as group:  # one failure stops the rest, reported once
        for number in range(IN_FLIGHT):
            group.create_task(worker(number))
    return latencies


async def measure(variant: str, send: SendFn, connections: Callable[[], int]) -> Run:
    """One timed run after its own warm-up, so each run starts with warm pools."""
    await drive(send, WARMUP)
    cpu, wall = time.process_time(), time.perf_counter()
    latencies = await drive(send, SENDS)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    cuts = [cut * 1000 for cut in statistics.quantiles(latencies, n=100)]
    return Run(variant, cpu * 1000 / SENDS, SENDS / wall, cuts[49], cuts[98], connections())


async def compare(url: str) -> list[Run]:
    """Both variants against one migrated schema, alternating, in this one event loop."""
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    unused = cast(Any, None)
    services = Services(store, unused, unused, unused)  # only .db is used
    aio = AsyncTranscript(url, store.connections)
    await aio.pool.open(wait=True, timeout=10.0)
    variants = {  # (a) the app's way: the real store's methods through Services.db
        "a: thread hop": sends_through(services.db, store),
        "b: async driver": sends_through(awaited, aio),
    }
    sizes = {  # the pools' sizes after each run, to show both grew alike
        "a: thread hop": lambda: int(store._pool.get_stats()["pool_size"]),
        "b: async driver": lambda: int(aio.pool.get_stats()["pool_size"]),
    }
    try:
        await statement_shape(variants)
        print(f"Every run ({SENDS} sends after {WARMUP} to warm up, {IN_FLIGHT} in flight):\n")
        print(HEADER)
        runs: list[Run] = []
        for number in range(1, ROUNDS + 1):
            for name, send in variants.items():
                runs.append(await measure(name, send, sizes[name]))
                print(runs[-1].row(str(number)), flush=True)
        return runs
    finally:
        services.close()
        await aio.pool.close()
        store.close()


def summarise(runs: list[Run]) -> None:
    """The median of each variant's runs, and what they say."""
    medians: list[Run] = []
    spreads: list[float] = []  # each variant's CPU per send, max minus min, % of median
    for variant in dict.fromkeys(run.variant for run in runs):
        mine = [run for run in runs if run.variant == variant]
        fields = ("cpu_ms", "per_second", "p50_ms", "p99_ms")
        cpu, rate, p50, p99 = (statistics.median(getattr(run, f) for run in mine) for f in fields)
        medians.append(Run(variant, cpu, rate, p50, p99, max(run.connections for run in mine)))
        cpus = [run.cpu_ms for run in mine]
        spreads.append((max(cpus) - min(cpus)) / cpu * 100)
    print(f"\nMedians of {ROUNDS} runs each:\n\n{HEADER}")
    for median in medians:
        print(median.row("median"))
    a, b = medians
    change = (b.cpu_ms - a.cpu_ms) / a.cpu_ms * 100
    print(
        f"\nReading: the async driver (b) used {abs(change):.0f}% "
        f"{'less' if change < 0 else 'more'} of this process's CPU per send than the app's "
        f"thread hop (a): {b.cpu_ms:.3f} against {a.cpu_ms:.3f} ms, medians (the runs of b "
        f"spread {spreads[1]:.0f}%, of a {spreads[0]:.0f}%, min to max). It ran "
        f"{b.per_second:.0f} against {a.per_second:.0f} sends/s, a median send taking "
        f"{b.p50_ms:.2f} against {a.p50_ms:.2f} ms; the server shares this machine's CPUs, so "
        "those two depend on it as much as on this process. Both ran the same statements "
        "(checked above) through pools of the same size with the same idle check, so the "
        "main difference is how this process waits on the database: a thread handoff per "
        "store call, or psycopg's asyncio wait (a loop round, a future, a reader added and "
        "removed) per round trip. The PostgreSQL server's CPU (another process) is not in "
        "these numbers and was not measured."
    )


def main() -> None:
    print(
        "Store transactions per send through the app's thread hop (a) or psycopg's async\n"
        "driver on the event loop (b). CPU is this process's, all threads "
        "(time.process_time);\nthe PostgreSQL server's CPU is another process and is "
        "not counted.\n"
    )
    with postgres_schema() as url:
        runs = asyncio.run(compare(url))
    summarise(runs)


if __name__ == "__main__":
    main()
