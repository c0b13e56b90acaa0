"""Benchmark sms-bridge: ``.venv/bin/python -m bench.run [--quick] [--soak N] [--no-profile]``.

Starts the real app (``python -m bot``, HTTP mode) once per scenario against the local Slack
and 2Chat stand-ins, drives it only with signed ``/sms`` requests on 127.0.0.1, and prints a
Markdown table of ack latency, throughput and CPU per send against the floor relay, two app
processes on one Postgres, fan-out time and pacing, a 5,000-member page, and reply polling
beside a page under a per-minute cap. Every loop has a fixed count and every wait a timeout,
so it stops by itself in under ten minutes. Then, unless ``--no-profile``, it samples one
more throughput run with py-spy and writes bench/profile.svg (CPU flame graph) and
bench/profile.txt. The exit status is 1 when a target is missed.

Environment: ``SMS_BRIDGE_BENCH_POSTGRES`` (default postgresql://postgres@127.0.0.1:5432/test;
each run creates and drops its own schema) and ``SMS_BRIDGE_BENCH_APP_ROOT`` (benchmark the
bot/ of another checkout, e.g. a candidate fix, under the same load).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg

from bench.harness import ROOT, postgres_schema
from bench.profiling import py_spy, summarise_profile
from bench.report import Report
from bench.scenarios_load import (
    FLOOR,
    Round,
    Throughput,
    ack_latency,
    against_floor,
    soak,
    throughput,
    two_processes,
)
from bench.scenarios_pages import big_page, fan_out, polling_page, shared_page
from bench.scenarios_trigger import page_trigger

PROFILE_SVG = ROOT / "bench" / "profile.svg"
PROFILE_TXT = ROOT / "bench" / "profile.txt"


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


async def on_postgres(
    report: Report, what: str, scenario: Callable[[str], Awaitable[object]]
) -> None:
    """Run ``scenario`` with a fresh Postgres schema; without Postgres, say so and go on."""
    try:
        with postgres_schema() as url:
            await scenario(url)
    except (OSError, psycopg.Error) as exc:
        report.notes.append(f"{what}: Postgres not run: {exc}")


async def cpu_round(work: Path, report: Report, label: str, total: int, clients: int) -> Round:
    """One round of the CPU comparison: SQLite, Postgres, then the floor, the same load."""
    results: dict[str, Throughput] = {}
    results["SQLite"] = await throughput(work, report, f"{label}-sqlite", total, clients)

    async def on_pg(url: str) -> None:
        results["Postgres"] = await throughput(
            work, report, f"{label}-postgres", total, clients, url
        )

    await on_postgres(report, "throughput", on_pg)
    floor = await throughput(work, report, f"{label}-floor", total, clients, program=FLOOR)
    return results, floor


async def scenarios(
    work: Path, report: Report, quick: bool, soak_sends: int, cpu_rounds: int
) -> None:
    """Every scenario in turn; each starts its own app (or two) and stand-ins."""
    total = 200 if quick else 1000
    clients = 20
    per_requester = 4 if quick else 8
    step, began = iter(range(1, 11)), time.monotonic()

    def say(what: str) -> None:
        print(f"{next(step)}/10 at {time.monotonic() - began:3.0f} s: {what}…", flush=True)

    say("ack latency (2Chat 2 s per call: the floor, SQLite, Postgres; then 0 s, the control)")
    floor_p99 = await ack_latency(work, report, per_requester, 2.0, "floor", program=FLOOR)
    await ack_latency(work, report, per_requester, 2.0, floor_p99=floor_p99)
    await on_postgres(
        report,
        "ack latency",
        lambda url: ack_latency(
            work, report, per_requester, 2.0, "Postgres", url, floor_p99=floor_p99
        ),
    )
    await ack_latency(work, report, per_requester, delay=0.0)

    rounds: list[Round] = []
    say(f"CPU per send: {cpu_rounds} rounds of SQLite, Postgres and the floor ({total} sends)")
    for number in range(1, cpu_rounds + 1):
        rounds.append(await cpu_round(work, report, f"r{number}", total, clients))
    against_floor(report, rounds)
    say(f"two app processes on one Postgres ({total} sends, then a page)")
    await on_postgres(
        report, "two processes", lambda _: two_processes(work, report, total, clients)
    )
    say("fan-out to 100, 2Chat 300 ms, no cap")
    await fan_out(work, report, cap=None)
    say("fan-out to 100, requests_per_minute 600; then 2 x 100 from two processes at 120")
    await fan_out(work, report, cap=600)
    await on_postgres(report, "shared page", lambda url: shared_page(work, report, url, cap=120))
    say("page triggers (mentions, auto-page alerts) to their first 2Chat call")
    await page_trigger(work, report, per_requester * 2)
    await on_postgres(
        report,
        "page trigger",
        lambda url: page_trigger(work, report, per_requester * 2, "Postgres", url),
    )
    say("a 5,000-member page, 2Chat 300 ms, no cap")
    await big_page(work, report)
    say("reply polling from 50 numbers and a page, requests_per_minute 300")
    await polling_page(work, report)
    say(f"soak, SQLite ({soak_sends} sends)" if soak_sends else "no soak (--soak 0)")
    if soak_sends:
        await soak(work, report, soak_sends, clients)

    peak_name, peak = max(report.peak_rss.items(), key=lambda item: item[1])
    report.add(
        "peak RSS of the app (VmHWM, worst scenario)",
        f"{peak:.0f} MiB ({peak_name})",
        "< 150 MB",
        peak * 1.048576 < 150,
    )
    for number, (results, _) in enumerate(rounds, 1):
        for name, res in results.items():
            report.notes.append(
                f"throughput {name}, round {number}: the app used {res.app_cpu_share:.0%} of "
                f"a core, the load generator and stand-ins {res.load_cpu_share:.0%}"
            )


async def main(
    quick: bool, profile: bool, profile_db: str, keep: bool, soak_sends: int, cpu_rounds: int
) -> int:
    total = 200 if quick else 1000
    work = Path(tempfile.mkdtemp(prefix="sms-bridge-bench-"))
    report = Report()
    print(f"sms-bridge benchmark{' (quick)' if quick else ''} on {machine()}", flush=True)
    began = time.monotonic()
    try:
        await scenarios(work, report, quick, soak_sends, cpu_rounds)
        print()
        print(report.table())
        print()
        for note in report.notes:
            print(f"- {note}")
        print(f"\nbenchmark took {time.monotonic() - began:.0f} s", flush=True)

        if profile:
            await profile_run(work, total, 20, profile_db)
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
    parser.add_argument(
        "--rounds", type=int, default=3, metavar="N", help="rounds of the CPU comparison"
    )
    args = parser.parse_args()
    sys.exit(
        asyncio.run(
            main(
                args.quick,
                not args.no_profile,
                args.profile_db,
                args.keep,
                args.soak,
                args.rounds,
            )
        )
    )


if __name__ == "__main__":
    cli()
