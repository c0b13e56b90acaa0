"""Benchmark sms-bridge: ``.venv/bin/python -m bench.run [--quick] [--no-profile]``.

Starts the real app (``python -m bot``, HTTP mode) once per scenario against the local Slack
and 2Chat stand-ins, drives it only with signed ``/sms`` requests on 127.0.0.1, and prints a
Markdown table of ack latency, throughput, fan-out time and pacing, and cost per send. Every
loop has a fixed count and every wait a timeout, so it stops by itself in a few minutes.
Then, unless ``--no-profile``, it samples one more throughput run with py-spy and writes
bench/profile.svg (CPU flame graph) and bench/profile.txt. The exit status is 1 when a
target is missed.

Environment: ``SMS_BRIDGE_BENCH_POSTGRES`` (default postgresql://postgres@127.0.0.1:5432/test;
each run creates and drops its own schema) and ``SMS_BRIDGE_BENCH_APP_ROOT`` (benchmark the
bot/ of another checkout, e.g. a candidate fix, under the same load).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg

from bench.harness import (
    GROUP,
    GROUP_NUMBERS,
    ROOT,
    USERS,
    App,
    Requester,
    TimedSlack,
    TimedTwoChat,
    final_edit,
    percentile,
    postgres_schema,
    process_cpu_self,
    wait_for,
)
from bench.profiling import py_spy, start_py_spy, stop_py_spy, summarise_profile
from bot.sms.fanout import DEFAULT_BURST

FLOOR = ROOT / "bench" / "floor.py"

PROFILE_SVG = ROOT / "bench" / "profile.svg"
PROFILE_TXT = ROOT / "bench" / "profile.txt"


@dataclass
class Row:
    """One line of the results table; ``met`` is None for a row without a target."""

    metric: str
    result: str
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    """What the scenarios found: table rows, notes under it, peak RSS per app process."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_rss: dict[str, float] = field(default_factory=dict)

    def add(self, metric: str, result: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(metric, result, target, met))

    def table(self) -> str:
        lines = ["| metric | result | target | met |", "|---|---|---|---|"]
        for row in self.rows:
            met = "" if row.met is None else ("yes" if row.met else "**NO**")
            lines.append(f"| {row.metric} | {row.result} | {row.target} | {met} |")
        return "\n".join(lines)


def ms(seconds: float) -> str:
    """Seconds shown in milliseconds."""
    return f"{seconds * 1000:.1f} ms"


def check_log(app: App, report: Report, scenario: str) -> None:
    """Errors in the app's log make a number suspect: say so next to the table."""
    bad = [line for line in app.log().splitlines() if " ERROR " in line or "Traceback" in line]
    if bad:
        report.notes.append(f"{scenario}: {len(bad)} error lines in the app log, e.g. {bad[0]}")


async def warm_up(requester: Requester, slack: TimedSlack) -> None:
    """One send first: Bolt's auth.test and the first connections are not steady state."""
    await requester.sms(USERS[0], f"{GROUP_NUMBERS[0]} warm-up")
    await wait_for(lambda: slack.sent_replies or slack.failed_replies, timeout=15)


def outcomes(slack: TimedSlack) -> int:
    """Outcome replies posted so far, sent or not."""
    return len(slack.sent_replies) + len(slack.failed_replies)


def session(limit: int) -> aiohttp.ClientSession:
    """The load's HTTP client: at most ``limit`` connections, one per requester."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), timeout=aiohttp.ClientTimeout(total=30)
    )


# --------------------------------------------------------------------------- scenarios


async def ack_latency(work: Path, report: Report, per_requester: int, delay: float) -> None:
    """/sms acks from closed-loop requesters while every 2Chat call takes ``delay`` s. The
    ack must not wait on 2Chat, so the same load with a zero-latency 2Chat is the control."""
    requesters = len(USERS)
    total = requesters * per_requester
    slack, twochat = TimedSlack(), TimedTwoChat(delay=delay)
    with slack, twochat, App(work / f"ack-{delay:g}", slack, twochat) as app:
        async with session(requesters) as http:
            client = Requester(http, app.url, slack.response_url("bench"))
            await warm_up(client, slack)
            base, failed_base = len(slack.sent_replies), len(slack.failed_replies)
            client.latencies.clear()

            async def requester(i: int) -> None:
                for k in range(per_requester):
                    number = GROUP_NUMBERS[(i * per_requester + k) % len(GROUP_NUMBERS)]
                    await client.sms(USERS[i], f"{number} ack bench {i}-{k}")

            started = time.monotonic()
            await asyncio.gather(*(requester(i) for i in range(requesters)))
            acked = time.monotonic() - started
            finished = await wait_for(
                lambda: outcomes(slack) - base - failed_base >= total, timeout=60
            )
        report.peak_rss[f"ack, 2Chat {delay:g} s"] = app.peak_rss_mb()
        check_log(app, report, f"ack latency, 2Chat {delay:g} s")
    lat = client.latencies
    p99 = percentile(lat, 99)
    control = delay == 0
    report.add(
        f"/sms ack latency, {requesters} concurrent requesters, 2Chat {delay:g} s/call"
        f"{' (control)' if control else ''} ({len(lat)} acks)",
        f"p50 {ms(percentile(lat, 50))}, p99 {ms(p99)}, max {ms(max(lat))}",
        "" if control else "p99 < 100 ms",
        None if control else p99 < 0.1,
    )
    done = len(slack.sent_replies) - base
    report.notes.append(
        f"ack latency, 2Chat {delay:g} s: {len(lat)} acks in {acked:.2f} s "
        f"({len(lat) / acked:.0f}/s); {done}/{total} sends then completed (2Chat accepted, "
        f"thread reply posted){'' if finished else ' before the 60 s timeout'}; "
        f"refusals: {len(client.refused)}"
    )


@dataclass
class Throughput:
    """One throughput run; ``seconds`` runs from the first request to the last reply."""

    completed: int
    total: int
    seconds: float
    cpu_ms_per_send: float
    app_cpu_share: float
    load_cpu_share: float
    ack_p50: float
    ack_p99: float
    completions: list[float]  # when each send's thread reply was posted (time.monotonic)

    def quarter_rates(self) -> tuple[float, float]:
        """Sends per second over the first and the last quarter of the completions: a
        cost that grows with history shows as a last quarter slower than the first."""
        times, quarter = self.completions, len(self.completions) // 4
        if quarter < 2:
            return float("nan"), float("nan")
        first = (quarter - 1) / max(times[quarter - 1] - times[0], 1e-9)
        last = (quarter - 1) / max(times[-1] - times[-quarter], 1e-9)
        return first, last


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
    """``total`` sends from ``clients`` closed-loop requesters with a zero-latency 2Chat;
    a send counts once its thread reply is posted. ``program`` runs instead of sms-bridge."""
    with TimedSlack() as slack, TimedTwoChat(delay=0.0) as twochat:
        app = App(work / label, slack, twochat, database_url=database_url, program=program)
        with app:
            async with session(clients) as http:
                client = Requester(http, app.url, slack.response_url("bench"))
                await warm_up(client, slack)
                base, failed_base = len(slack.sent_replies), len(slack.failed_replies)
                client.latencies.clear()
                spies = start_py_spy(app.pid, work) if profile else []
                cpu_before, load_before = app.cpu_seconds(), process_cpu_self()
                next_index = 0

                async def requester(i: int) -> None:
                    nonlocal next_index
                    while next_index < total:
                        index, next_index = next_index, next_index + 1
                        number = GROUP_NUMBERS[index % len(GROUP_NUMBERS)]
                        await client.sms(USERS[i % len(USERS)], f"{number} tput {index}")

                started = time.monotonic()
                await asyncio.gather(*(requester(i) for i in range(clients)))
                await wait_for(
                    lambda: outcomes(slack) - base - failed_base >= total,
                    timeout=max(120, total / 20),
                )
                last = slack.sent_replies[-1] if len(slack.sent_replies) > base else started
                await asyncio.sleep(0.2)  # the request's last store write follows the reply
                cpu = app.cpu_seconds() - cpu_before
                load_cpu = process_cpu_self() - load_before
                stop_py_spy(spies)
            report.peak_rss[label] = app.peak_rss_mb()
            check_log(app, report, label)
    completed = len(slack.sent_replies) - base
    seconds = max(last - started, 1e-9)
    result = Throughput(
        completed=completed,
        total=total,
        seconds=seconds,
        cpu_ms_per_send=cpu * 1000 / max(completed, 1),
        app_cpu_share=cpu / seconds,
        load_cpu_share=load_cpu / seconds,
        ack_p50=percentile(client.latencies, 50),
        ack_p99=percentile(client.latencies, 99),
        completions=slack.sent_replies[base:],
    )
    if client.refused:
        report.notes.append(f"{label}: {len(client.refused)} refused, e.g. {client.refused[0]}")
    return result


async def fan_out(work: Path, report: Report, cap: int | None) -> None:
    """One /sms to the 100-member group with 2Chat at 300 ms per call."""
    label = f"fanout-{cap or 'uncapped'}"
    slack, twochat = TimedSlack(), TimedTwoChat(delay=0.3)
    with slack, twochat, App(work / label, slack, twochat, requests_per_minute=cap) as app:
        async with session(2) as http:
            client = Requester(http, app.url, slack.response_url("bench"))
            await warm_up(client, slack)
            await asyncio.sleep(1.0)  # the warm-up's token is back in the pacer's bucket
            base = len(twochat.arrivals)
            started = time.monotonic()
            await client.sms(USERS[0], f"{GROUP} fan-out bench")
            budget = 30 + (len(GROUP_NUMBERS) * 60 / cap if cap else 0)
            await wait_for(lambda: final_edit(slack.final_edits), timeout=budget)
        report.peak_rss[label] = app.peak_rss_mb()
        check_log(app, report, label)
    arrivals = twochat.arrivals[base:]
    statuses = Counter(twochat.statuses()[base:])
    final = final_edit(slack.final_edits)
    if final is None:
        report.add(f"fan-out to {len(GROUP_NUMBERS)}", "did not finish in time", "", False)
        return
    done_at, text = final
    headline = text.splitlines()[0]
    app_says = re.search(r"in (\d+\.\d) s", headline)
    all_sent = headline.startswith("*all sent*") and len(arrivals) == len(GROUP_NUMBERS)
    if cap is None:
        took = done_at - started
        report.add(
            f"fan-out: page a {len(GROUP_NUMBERS)}-member group, 2Chat 300 ms/call, no cap",
            f"{took:.2f} s to the final thread edit (app: {app_says.group(1) if app_says else '?'}"
            f" s; {headline.split(' — ')[0]})",
            "< 2 s",
            took < 2.0 and all_sent,
        )
        return
    # The bucket starts full (DEFAULT_BURST starts at once); the rate is what follows.
    paced = arrivals[DEFAULT_BURST:]
    rate = (len(paced) - 1) * 60 / (paced[-1] - paced[0]) if len(paced) > 1 else float("nan")
    over_cap = sum(
        1 for i, t in enumerate(arrivals) if sum(1 for u in arrivals[: i + 1] if t - u < 60) > cap
    )
    too_many = statuses.get(429, 0)
    deviation = (rate - cap) / cap
    report.add(
        f"fan-out with requests_per_minute: {cap} ({len(arrivals)} sends)",
        f"{rate:.0f}/min after the {DEFAULT_BURST}-call burst ({deviation:+.1%}); "
        f"{over_cap} over the cap in any 60 s; {too_many} HTTP 429; {headline.split(' — ')[0]}",
        "within 5% of cap, no 429",
        abs(deviation) <= 0.05 and over_cap == 0 and too_many == 0 and all_sent,
    )


async def against_floor(
    work: Path, report: Report, ours: Throughput, total: int, clients: int
) -> None:
    """The same SQLite load on bench/floor.py, the least an ack-first relay can do, in
    the same run: the ratios say what the policy, the store and pacing cost on this machine."""
    floor = await throughput(work, report, "tput-floor", total, clients, program=FLOOR)
    report.add(
        f"floor relay (bench/floor.py): {clients} clients, zero-latency 2Chat",
        f"{floor.completed / floor.seconds:.0f} sends/s, CPU {floor.cpu_ms_per_send:.2f} ms "
        f"per send, ack p99 {ms(floor.ack_p99)} ({floor.completed}/{floor.total})",
    )
    cpu = ours.cpu_ms_per_send / floor.cpu_ms_per_send
    ack = ours.ack_p99 / floor.ack_p99
    rate = (ours.completed / ours.seconds) / (floor.completed / floor.seconds)
    report.add(
        "sms-bridge (SQLite) / floor",
        f"CPU per send {cpu:.1f} times, ack p99 {ack:.1f} times, throughput {rate:.2f} times",
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


# --------------------------------------------------------------------------- profiling


async def profile_run(work: Path, total: int, clients: int, database: str) -> None:
    """One more throughput run, sampled by py-spy; its own numbers are not reported."""
    if py_spy() is None:
        print("\nno py-spy found: `.venv/bin/pip install py-spy` to profile")
        return
    print(f"\nprofiling one more {database} throughput run with py-spy…", flush=True)
    if database == "postgres":
        with postgres_schema() as url:
            await throughput(work, Report(), "profile", total, clients, url, profile=True)
    else:
        await throughput(work, Report(), "profile", total, clients, profile=True)
    if not (work / "cpu.folded").exists():
        raise RuntimeError(f"py-spy wrote nothing; see {work}/py-spy-*.log")
    shutil.copyfile(work / "profile.svg", PROFILE_SVG)
    summary = summarise_profile(work)
    header = f"py-spy profile of a {database} throughput run ({total} sends, {clients} clients)"
    PROFILE_TXT.write_text(f"{header}\n\n{summary}\n")
    print(summary)
    print(f"\nflame graph (CPU): {PROFILE_SVG}; summary: {PROFILE_TXT}")


# --------------------------------------------------------------------------- main


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()}"


async def main(quick: bool, profile: bool, profile_db: str, keep: bool, soak_sends: int) -> int:
    total = 200 if quick else 1000
    clients = 20
    per_requester = 4 if quick else 8
    work = Path(tempfile.mkdtemp(prefix="sms-bridge-bench-"))
    report = Report()
    print(f"sms-bridge benchmark{' (quick)' if quick else ''} on {machine()}", flush=True)
    began = time.monotonic()
    try:
        print("1/5 ack latency (2Chat 2 s per call, then 0 s as the control)…", flush=True)
        await ack_latency(work, report, per_requester, delay=2.0)
        await ack_latency(work, report, per_requester, delay=0.0)

        print(f"2/5 throughput, SQLite ({total} sends)…", flush=True)
        results: dict[str, Throughput] = {}
        results["SQLite"] = await throughput(work, report, "tput-sqlite", total, clients)
        print(f"3/5 throughput, Postgres ({total} sends)…", flush=True)
        try:
            with postgres_schema() as url:
                results["Postgres"] = await throughput(
                    work, report, "tput-postgres", total, clients, database_url=url
                )
        except (OSError, psycopg.Error) as exc:
            report.notes.append(f"Postgres not run: {exc}")
        for name, res in results.items():
            report.add(
                f"throughput, {name}: {clients} clients, zero-latency 2Chat",
                f"{res.completed / res.seconds:.0f} sends/s ({res.completed}/{res.total} in "
                f"{res.seconds:.1f} s; ack p50 {ms(res.ack_p50)}, p99 {ms(res.ack_p99)})",
                "≥ 100 sends/s",
                res.completed == res.total and res.completed / res.seconds >= 100,
            )

        print(f"   the floor relay, same load ({total} sends)…", flush=True)
        await against_floor(work, report, results["SQLite"], total, clients)

        print("4/5 fan-out to 100, 2Chat 300 ms, no cap…", flush=True)
        await fan_out(work, report, cap=None)
        print("5/5 fan-out to 100, requests_per_minute 600…", flush=True)
        await fan_out(work, report, cap=600)
        if soak_sends:
            print(f"   soak, SQLite ({soak_sends} sends)…", flush=True)
            await soak(work, report, soak_sends, clients)

        for name, res in results.items():
            report.add(
                f"CPU per completed send, {name} (app process)",
                f"{res.cpu_ms_per_send:.2f} ms",
                "< 5 ms",
                res.cpu_ms_per_send < 5,
            )
        peak_name, peak = max(report.peak_rss.items(), key=lambda item: item[1])
        report.add(
            "peak RSS of the app (VmHWM, worst scenario)",
            f"{peak:.0f} MiB ({peak_name})",
            "< 150 MB",
            peak * 1.048576 < 150,
        )
        for name, res in results.items():
            report.notes.append(
                f"throughput {name}: the app used {res.app_cpu_share:.0%} of a core, the load "
                f"generator and stand-ins {res.load_cpu_share:.0%}"
            )

        print()
        print(report.table())
        print()
        for note in report.notes:
            print(f"- {note}")
        print(f"\nbenchmark took {time.monotonic() - began:.0f} s", flush=True)

        if profile:
            await profile_run(work, total, clients, profile_db)
    except BaseException:
        keep = True
        raise
    finally:
        if keep:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if all(row.met is not False for row in report.rows) else 1


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 sends instead of 1000")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    parser.add_argument(
        "--profile-db", choices=["sqlite", "postgres"], default="sqlite", help="for py-spy"
    )
    parser.add_argument("--keep", action="store_true", help="keep the app logs")
    parser.add_argument(
        "--soak", type=int, default=20_000, metavar="N", help="soak sends (0: no soak)"
    )
    args = parser.parse_args()
    sys.exit(
        asyncio.run(main(args.quick, not args.no_profile, args.profile_db, args.keep, args.soak))
    )


if __name__ == "__main__":
    cli()
