"""Scenarios of many single-recipient ``/sms``: ack latency, closed-loop throughput on one
or two app processes, the floor relay as the peer, and the soak."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    GROUP,
    GROUP_NUMBERS,
    PAGE_TEXT,
    ROOT,
    USERS,
    App,
    Requester,
    ServerCpu,
    page,
    percentile,
    postgres_schema,
    process_cpu_self,
    session,
    wait_for,
    warm_up,
)
from bench.profiling import start_py_spy, stop_py_spy
from bench.report import Report, ms
from bench.standins import TimedSlack, TimedTwoChat

FLOOR = ROOT / "bench" / "floor.py"
ACK_P99_TARGET = 0.050


async def ack_latency(
    work: Path,
    report: Report,
    per_requester: int,
    delay: float,
    database: str = "SQLite",
    database_url: str | None = None,
    program: Path | None = None,
    floor_p99: float | None = None,
) -> float:
    """/sms acks from closed-loop requesters while every 2Chat call takes ``delay`` s; their
    p99. The ack must not wait on 2Chat, so the same load with a zero-latency 2Chat is the
    control; ``program`` (the floor) runs instead of sms-bridge as the peer, and
    ``floor_p99``, the peer's p99, is shown beside this one's."""
    requesters = len(USERS)
    total = requesters * per_requester
    label = f"ack, {database}, 2Chat {delay:g} s"
    slack, twochat = TimedSlack(), TimedTwoChat(delay=delay)
    app = App(
        work / f"ack-{database}-{delay:g}",
        slack,
        twochat,
        database_url=database_url,
        program=program,
    )
    with slack, twochat, app:
        async with session(requesters) as http:
            client = Requester(http, app.url, slack.response_url("bench"))
            await warm_up(client, slack)
            base, sent_base = slack.outcomes(), len(slack.sent_replies)
            client.latencies.clear()

            async def requester(i: int) -> None:
                for k in range(per_requester):
                    number = GROUP_NUMBERS[(i * per_requester + k) % len(GROUP_NUMBERS)]
                    await client.sms(USERS[i], f"{number} ack bench {i}-{k}")

            started, app_cpu, load_cpu = time.monotonic(), app.cpu_seconds(), process_cpu_self()
            await asyncio.gather(*(requester(i) for i in range(requesters)))
            acked = time.monotonic() - started
            app_cpu, load_cpu = app.cpu_seconds() - app_cpu, process_cpu_self() - load_cpu
            finished = await wait_for(lambda: slack.outcomes() - base >= total, timeout=60)
        report.app_done(app, label)
    lat = client.latencies
    p99 = percentile(lat, 99)
    peer = delay == 0 or program is not None
    what = " (control)" if delay == 0 else " (the peer)" if program else ""
    report.add(
        f"/sms ack latency, {database}, {requesters} concurrent requesters, 2Chat {delay:g} "
        f"s/call{what} ({len(lat)} acks)",
        f"p50 {ms(percentile(lat, 50))}, p99 {ms(p99)}, max {ms(max(lat))}"
        + (f" (p99 {p99 / floor_p99:.2f} times the floor's)" if floor_p99 else ""),
        "" if peer else f"p99 < {ms(ACK_P99_TARGET)}",
        None if peer else p99 < ACK_P99_TARGET,
    )
    report.notes.append(
        f"{label}: {len(lat)} acks in {acked:.2f} s ({len(lat) / acked:.0f}/s; the app used "
        f"{app_cpu / acked:.0%} of a core, {app_cpu * 1000 / len(lat):.2f} ms per ack, the "
        f"load generator and stand-ins {load_cpu / acked:.0%}); "
        f"{len(slack.sent_replies) - sent_base}/{total} sends then completed (2Chat accepted, "
        f"thread reply posted){'' if finished else ' before the 60 s timeout'}; "
        f"refusals: {len(client.refused)}"
    )
    return p99


@dataclass
class Throughput:
    """One throughput run; ``seconds`` runs from the first request to the last reply."""

    completed: int
    total: int
    seconds: float
    cpu_ms_per_send: float  # of every app process, summed
    server_ms_per_send: float  # the PostgreSQL server's sessions of the app (ServerCpu)
    writers_ms_per_send: float  # the PostgreSQL cluster's writers (ServerCpu)
    app_cpu_share: float
    load_cpu_share: float
    ack_p50: float
    ack_p99: float
    completions: list[float]  # when each send's thread reply was posted (time.monotonic)

    @property
    def rate(self) -> float:
        return self.completed / self.seconds

    @property
    def total_ms_per_send(self) -> float:
        """CPU per send of the app and its database server together."""
        return self.cpu_ms_per_send + self.server_ms_per_send + self.writers_ms_per_send

    def summary(self) -> str:
        return (
            f"{self.rate:.0f} sends/s ({self.completed}/{self.total} in {self.seconds:.1f} s; "
            f"ack p50 {ms(self.ack_p50)}, p99 {ms(self.ack_p99)})"
        )

    def quarter_rates(self) -> tuple[float, float]:
        """Sends per second over the first and the last quarter of the completions: a
        cost that grows with history shows as a last quarter slower than the first."""
        times, quarter = self.completions, len(self.completions) // 4
        if quarter < 2:
            return float("nan"), float("nan")
        first = (quarter - 1) / max(times[quarter - 1] - times[0], 1e-9)
        last = (quarter - 1) / max(times[-1] - times[-quarter], 1e-9)
        return first, last


async def drive(
    work: Path,
    report: Report,
    apps: Sequence[App],
    slack: TimedSlack,
    total: int,
    clients: int,
    profile: bool = False,
) -> Throughput:
    """``total`` sends (text "tput N") from ``clients`` closed-loop requesters, dealt out
    over ``apps`` in turn; a send counts once its thread reply is posted. The CPU is that of
    every app process; ``profile`` samples the first with py-spy."""
    async with session(clients) as http:
        targets = [Requester(http, app.url, slack.response_url("bench")) for app in apps]
        for target in targets:
            await warm_up(target, slack)
            target.latencies.clear()
        base, sent_base = slack.outcomes(), len(slack.sent_replies)
        spies = start_py_spy(apps[0].pid, work) if profile else []
        server = ServerCpu.of(apps[0].database_url)
        server_before = server.read() if server else {}
        cpu_before, load_before = sum(a.cpu_seconds() for a in apps), process_cpu_self()
        next_index = 0

        async def requester(i: int) -> None:
            nonlocal next_index
            client = targets[i % len(targets)]
            while next_index < total:
                index, next_index = next_index, next_index + 1
                number = GROUP_NUMBERS[index % len(GROUP_NUMBERS)]
                await client.sms(USERS[i % len(USERS)], f"{number} tput {index}")

        started = time.monotonic()
        await asyncio.gather(*(requester(i) for i in range(clients)))
        await wait_for(lambda: slack.outcomes() - base >= total, timeout=max(120, total / 20))
        last = slack.sent_replies[-1] if len(slack.sent_replies) > sent_base else started
        await asyncio.sleep(0.2)  # the request's last store write follows the reply
        cpu = sum(a.cpu_seconds() for a in apps) - cpu_before
        load_cpu = process_cpu_self() - load_before
        sessions, writers = server.used(server_before) if server else (0.0, 0.0)
        stop_py_spy(spies)
    completed = len(slack.sent_replies) - sent_base
    seconds = max(last - started, 1e-9)
    latencies = [lat for target in targets for lat in target.latencies]
    refused = [text for target in targets for text in target.refused]
    if refused:
        report.notes.append(f"{len(refused)} /sms refused in a throughput run, e.g. {refused[0]}")
    return Throughput(
        completed=completed,
        total=total,
        seconds=seconds,
        cpu_ms_per_send=cpu * 1000 / max(completed, 1),
        server_ms_per_send=sessions * 1000 / max(completed, 1),
        writers_ms_per_send=writers * 1000 / max(completed, 1),
        app_cpu_share=cpu / seconds,
        load_cpu_share=load_cpu / seconds,
        ack_p50=percentile(latencies, 50),
        ack_p99=percentile(latencies, 99),
        completions=slack.sent_replies[sent_base:],
    )


async def throughput(
    work: Path,
    report: Report,
    label: str,
    total: int,
    clients: int,
    database_url: str | None = None,
    profile: bool = False,
    program: Path | None = None,
) -> Throughput:
    """One app process, zero-latency 2Chat. ``program`` runs instead of sms-bridge."""
    with TimedSlack() as slack, TimedTwoChat() as twochat:
        app = App(work / label, slack, twochat, database_url=database_url, program=program)
        with app:
            result = await drive(work, report, [app], slack, total, clients, profile)
            report.app_done(app, label)
    return result


def sent_twice(sends: list[tuple[str, str]]) -> int:
    """How many (number, text) pairs 2Chat received more than once."""
    return sum(1 for count in Counter(sends).values() if count > 1)


async def two_processes(work: Path, report: Report, total: int, clients: int) -> None:
    """Two app processes on one Postgres database, the closed-loop load split across them,
    then a page through the first while the second runs: whatever they share through the
    store (claims, leases, the sweeper) must still send each SMS exactly once."""
    with postgres_schema() as url, TimedSlack() as slack, TimedTwoChat() as twochat:
        apps = [App(work / f"pg-two-{name}", slack, twochat, database_url=url) for name in "ab"]
        with apps[0], apps[1]:
            res = await drive(work, report, apps, slack, total, clients)
            twochat.set_delay(0.3)  # a page that lasts, so the other process may interfere
            async with session(1) as http:
                client = Requester(http, apps[0].url, slack.response_url("bench"))
                done = await page(client, slack, GROUP, timeout=30)
            await asyncio.sleep(1.0)  # a duplicate would come after the final edit
            for app, name in zip(apps, ("A", "B"), strict=True):
                report.app_done(app, f"two processes, {name}")
    sends = twochat.sent_to()
    load = [send for send in sends if send[1].startswith("tput ")]
    paged = Counter(number for number, text in sends if text == PAGE_TEXT)
    once = sum(1 for number in GROUP_NUMBERS if paged[number] == 1)
    report.add(
        f"two app processes on one Postgres: {clients} clients split across both, "
        "zero-latency 2Chat",
        f"{res.summary()}; CPU {res.cpu_ms_per_send:.2f} ms per send (both processes)",
    )
    report.add(
        "two app processes: each SMS sent once",
        f"load: {len(load)} 2Chat sends for {total} /sms, {sent_twice(load)} sent twice; "
        f"page through A: {once}/{len(GROUP_NUMBERS)} members got exactly one SMS "
        f"({sum(paged.values())} sends; {done.describe()})",
        "every /sms once, every member once",
        len(load) == total
        and not sent_twice(load)
        and once == len(GROUP_NUMBERS)
        and sum(paged.values()) == len(GROUP_NUMBERS),
    )


async def soak(work: Path, report: Report, total: int, clients: int) -> None:
    """``total`` sends on one SQLite database: throughput must not fall as history grows
    (rate-limit checks, the reply poller's queries and the sweeper all read that history)."""
    res = await throughput(work, report, "soak-sqlite", total, clients)
    first, last = res.quarter_rates()
    report.add(
        f"soak, SQLite: {total} sends, first vs last quarter",
        f"{first:.0f} → {last:.0f} sends/s ({last / first - 1:+.0%}); "
        f"{res.completed}/{res.total} in {res.seconds:.0f} s, "
        f"CPU {res.cpu_ms_per_send:.2f} ms/send",
        "last ≥ 90% of first",
        res.completed == res.total and last >= 0.9 * first,
    )


# CPU per send at most, as a multiple of the floor's: the app on SQLite; on Postgres the
# app and the server's sessions and writers together. SQLite's ack p99 at most this
# multiple of the floor's, in the same throughput load.
FLOOR_CPU_RATIO = {"SQLite": 3.0, "Postgres": 5.0}
FLOOR_ACK_RATIO = 1.5


# One round of the CPU comparison: each database's throughput run, and the floor's.
Round = tuple[dict[str, Throughput], Throughput]


def spread(values: Sequence[float], unit: str = "", digits: int = 1) -> str:
    """The median of the rounds, and their range when there are several."""
    middle = statistics.median(values)
    if len(values) < 2:
        return f"{middle:.{digits}f}{unit}"
    return (
        f"{middle:.{digits}f}{unit} (median of {len(values)} rounds: "
        f"{min(values):.{digits}f} to {max(values):.{digits}f})"
    )


def against_floor(report: Report, rounds: Sequence[Round]) -> None:
    """Throughput and CPU per send of each database, read against the floor relay measured
    in the same round: the ratios say what the policy, the store and pacing cost here. The
    targets are met by the median round; every round's range is shown beside it.

    Long because it words one row per measure, each from the same rounds."""
    floors = [floor for _, floor in rounds]
    report.add(
        "floor relay (bench/floor.py): 20 clients, zero-latency 2Chat",
        f"CPU per send {spread([f.cpu_ms_per_send for f in floors], ' ms', 2)}; "
        f"{spread([f.rate for f in floors], ' sends/s', 0)}; "
        f"ack p99 {spread([f.ack_p99 * 1000 for f in floors], ' ms')}",
    )
    for name in rounds[0][0]:
        runs = [(results[name], floor) for results, floor in rounds if name in results]
        report.add(
            f"throughput, {name}: 20 clients, zero-latency 2Chat",
            f"{spread([res.rate for res, _ in runs], ' sends/s', 0)}; "
            f"{spread([res.rate / floor.rate for res, floor in runs], ' times the floor', 2)}",
        )
        ratios = [res.total_ms_per_send / floor.cpu_ms_per_send for res, floor in runs]
        limit = FLOOR_CPU_RATIO[name]
        server = (
            f"; server: sessions {spread([r.server_ms_per_send for r, _ in runs], ' ms', 2)}, "
            f"writers {spread([r.writers_ms_per_send for r, _ in runs], ' ms', 2)}; "
            f"app and server {spread([r.total_ms_per_send for r, _ in runs], ' ms', 2)}"
            if name == "Postgres"
            else " (no server)"
        )
        report.add(
            f"CPU per completed send, {name}, app and database server ÷ floor",
            f"{spread(ratios, ' times')}; "
            f"app {spread([r.cpu_ms_per_send for r, _ in runs], ' ms', 2)}{server}",
            f"≤ {limit:g} times the floor's",
            all(res.completed == res.total for res, _ in runs)
            and statistics.median(ratios) <= limit,
        )
    sqlite = [(results["SQLite"], floor) for results, floor in rounds if "SQLite" in results]
    if sqlite:
        ratios = [res.ack_p99 / floor.ack_p99 for res, floor in sqlite]
        report.add(
            "ack p99 under the throughput load, SQLite ÷ floor",
            f"{spread(ratios, ' times', 2)}; SQLite "
            f"{spread([res.ack_p99 * 1000 for res, _ in sqlite], ' ms')}",
            f"≤ {FLOOR_ACK_RATIO:g} times the floor's",
            statistics.median(ratios) <= FLOOR_ACK_RATIO,
        )
