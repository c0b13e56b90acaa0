"""What the benchmark scenarios share: the policy, the app process, /proc readings, load.

The app runs as its own ``python -m bot`` process, so its CPU time and memory can be read
from /proc without counting the load generator or the stand-ins (bench/standins.py), which
run here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import phonenumbers
import psycopg

from bench.standins import TWOCHAT_KEY, Edit, TimedSlack
from tests.fakes.signing import SIGNING_SECRET, signed_headers, slash_command_body
from tests.fakes.slack_server import BOT_TOKEN, SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

ROOT = Path(__file__).resolve().parent.parent
# The checkout whose bot/ is benchmarked; point it at a copy to measure a candidate fix.
APP_ROOT = Path(os.environ.get("SMS_BRIDGE_BENCH_APP_ROOT") or ROOT).resolve()
CHANNEL = "C0BENCH"
FROM_NUMBER = "+17137157533"
GROUP = "bench100"
GROUP_NUMBERS = tuple(f"+4477009000{i:02d}" for i in range(100))
# An on-call roster: who a mention or an alert in CHANNEL pages (BenchPolicy.page_channel).
PAGE_GROUP, PAGE_GROUP_SIZE, ALERT_MATCH = "oncall", 5, "BENCH-ALERT"
# Whole GB mobile ranges (+44 7700 8xxxxx, +44 7700 1xxxxx) phonenumbers knows as assigned.
PAGE_PREFIXES = ("+4477008", "+4477001")
USERS = tuple(f"U0BENCH{i:02d}" for i in range(20))
POSTGRES_URL = os.environ.get(
    "SMS_BRIDGE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@functools.cache
def page_numbers(count: int) -> tuple[str, ...]:
    """``count`` GB mobile numbers that phonenumbers lists as assigned, for a big page.

    GROUP_NUMBERS are Ofcom's drama range (+44 7700 900xxx), which holds only 1,000 numbers
    and which the app accepts only as "plausible unlisted"; a real roster's numbers take the
    ``is_valid_number`` path, so these come from whole 100,000-number mobile ranges.
    """
    found: list[str] = []
    for prefix in PAGE_PREFIXES:
        for i in range(100_000):
            number = f"{prefix}{i:05d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                found.append(number)
                if len(found) == count:
                    return tuple(found)
    raise ValueError(f"only {len(found)} valid numbers in {PAGE_PREFIXES}, not {count}")


def _yaml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


@dataclass(frozen=True)
class BenchPolicy:
    """The app's policy file: per-hour limits that never refuse a benchmark send (the usual
    ones would stop it at 30 an hour), the 100-member group, and what a scenario adds."""

    requests_per_minute: int | None = None  # the pacer's cap on 2Chat calls
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)  # beside GROUP
    from_numbers: Mapping[str, str] = field(default_factory=dict)  # beside "main"
    poll_interval: str | None = None  # replies.poll_interval: the reply poller runs
    # CHANNEL pages PAGE_GROUP on a mention, and on a message matching ALERT_MATCH
    page_channel: bool = False

    def from_numbers_all(self) -> dict[str, str]:
        """Every from-number by name, the default ("main") first."""
        return {"main": FROM_NUMBER, **self.from_numbers}

    def yaml(self) -> str:
        from_numbers = self.from_numbers_all()
        groups = {GROUP: GROUP_NUMBERS, PAGE_GROUP: GROUP_NUMBERS[:PAGE_GROUP_SIZE], **self.groups}
        lines = [
            "version: 1",
            "defaults:",
            "  region: GB",
            "  from: main",
            "  max_segments: 3",
            "  mask_numbers: false",
            "from_numbers:",
            *(f'  {name}: "{number}"' for name, number in from_numbers.items()),
            "groups:",
            *(f"  {name}: {_yaml_list(members)}" for name, members in groups.items()),
            "senders:",
            f"  - users: [{', '.join(USERS)}]",
            '    to: ["*"]',
            "limits:",
            "  per_sender_per_hour: 1000000",
            "  per_recipient_per_hour: 1000000",
        ]
        if self.requests_per_minute:
            lines.append(f"  requests_per_minute: {self.requests_per_minute}")
        if self.poll_interval:
            lines += ["replies:", f"  poll_interval: {self.poll_interval}"]
        if self.page_channel:
            lines += [
                "channels:",
                f"  {CHANNEL}:",
                f"    page: {PAGE_GROUP}",
                "    auto_page:",
                f'      match: "{ALERT_MATCH}"',
                "      dedupe_window: 1m",
            ]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included (fields 14 and 15 of stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """The process's resident-set high-water mark (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class App:
    """One ``python -m bot`` in HTTP mode against the stand-ins; its log stays in ``workdir``."""

    workdir: Path
    slack: SlackStandIn
    twochat: TwoChatStandIn
    database_url: str | None = None
    policy: BenchPolicy = field(default_factory=lambda: BenchPolicy())
    # What to run instead of ``python -m bot`` (the floor relay, bench/floor.py).
    program: Path | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TWOCHAT_"))}
        config = self.workdir / "bridge.yaml"
        config.write_text(self.policy.yaml())
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            TWOCHAT_API_KEY=TWOCHAT_KEY,
            SLACK_API_URL=self.slack.api_url,
            TWOCHAT_API_URL=self.twochat.url,
            SMS_BRIDGE_CONFIG=str(config),
            DATABASE_URL=self.database_url or f"sqlite:///{self.workdir / 'bridge.db'}",
            PORT=str(self.port),
            LOG_LEVEL="INFO",  # the production default: one log line per 2Chat call
            # A 2 s 2Chat must not time out, nor a send waiting for one of the 50 connections.
            TWOCHAT_READ_TIMEOUT="15",
            TWOCHAT_CONNECT_TIMEOUT="5",
            SHUTDOWN_GRACE_SECONDS="10",
            PYTHONPATH=str(APP_ROOT),
        )
        return env

    def start(self, timeout: float = 20) -> App:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "app.log").open("wb")
        command = ["-m", "bot"] if self.program is None else [str(self.program)]
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            cwd=self.workdir,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the app was not ready within {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        path = self.workdir / "app.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def stop(self) -> None:
        """SIGTERM (the app drains its sends), then kill if it does not stop in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_schema(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh schema for one run, dropped afterwards; yields the app's DATABASE_URL."""
    schema = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in base_url else "?"
        # The application name tells the app's server sessions apart (ServerCpu).
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# The cluster's own processes that write for every session's commits (WAL, dirty pages).
SERVER_WRITERS = ("walwriter", "checkpointer", "background writer")


@dataclass(frozen=True)
class ServerCpu:
    """The PostgreSQL server's CPU seconds for the app: the server sessions of the app's
    connections (pg_stat_activity, by the application name ``postgres_schema`` puts in the
    URL), and the cluster's writers, which work for every database on the server: on a
    machine others use too, that part also counts their work."""

    sessions: tuple[int, ...]
    writers: tuple[int, ...]

    @classmethod
    def of(cls, database_url: str | None) -> ServerCpu | None:
        """The server processes serving ``database_url`` now; None for SQLite."""
        if not database_url or not database_url.startswith("postgres"):
            return None
        name = parse_qs(urlsplit(database_url).query).get("application_name", [""])[0]
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT pid, application_name = %s FROM pg_stat_activity "
                "WHERE application_name = %s OR backend_type = ANY(%s)",
                (name, name, list(SERVER_WRITERS)),
            ).fetchall()
        return cls(
            tuple(pid for pid, mine in rows if mine), tuple(pid for pid, mine in rows if not mine)
        )

    def read(self) -> dict[int, float]:
        """CPU seconds of each process still running."""
        found: dict[int, float] = {}
        for pid in (*self.sessions, *self.writers):
            with contextlib.suppress(OSError):
                found[pid] = cpu_seconds(pid)
        return found

    def used(self, before: dict[int, float]) -> tuple[float, float]:
        """CPU seconds since ``before`` (a ``read``): the app's sessions, the writers. A
        process that ended between the two readings is left out."""
        after = self.read()
        spent = {pid: after[pid] - before[pid] for pid in after.keys() & before.keys()}
        return (
            sum(spent.get(pid, 0.0) for pid in self.sessions),
            sum(spent.get(pid, 0.0) for pid in self.writers),
        )


# --------------------------------------------------------------------------- load


@dataclass
class Requester:
    """Posts ``/sms`` to the app signed exactly as Slack signs it, timing the ack."""

    session: aiohttp.ClientSession
    app_url: str
    response_url: str
    latencies: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def sms(self, user: str, text: str) -> float:
        """One /sms; the ack's round-trip time in seconds. A non-empty ack is a refusal."""
        body = slash_command_body(text, user, CHANNEL, self.response_url)
        headers = signed_headers(body)
        started = time.perf_counter()
        async with self.session.post(
            self.app_url + "/slack/events", data=body.encode(), headers=headers
        ) as response:
            answer = await response.text()
            elapsed = time.perf_counter() - started
        self.latencies.append(elapsed)
        if response.status != 200 or answer.strip():
            self.refused.append(f"HTTP {response.status}: {answer[:200]}")
        return elapsed


def session(limit: int) -> aiohttp.ClientSession:
    """The load's HTTP client: at most ``limit`` connections, one per requester."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), timeout=aiohttp.ClientTimeout(total=30)
    )


async def warm_up(requester: Requester, slack: TimedSlack, user: str = USERS[0]) -> None:
    """One send first: Bolt's auth.test and the first connections are not steady state."""
    before = slack.outcomes()
    await requester.sms(user, f"{GROUP_NUMBERS[0]} warm-up")
    await wait_for(lambda: slack.outcomes() > before, timeout=15)


async def wait_for(predicate: Any, timeout: float, poll: float = 0.01) -> bool:
    """Poll ``predicate()`` until true or ``timeout``; the benchmark never waits unbounded."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(poll)
    return True


def final_edit(edits: list[Edit]) -> Edit | None:
    """The multi-recipient reply's last edit: its headline ends "in X.X s" (progress edits,
    even one reading "*K of N failed*" while others are still pending, do not)."""
    for edit in edits:
        if re.search(r" in \d+\.\d s$", edit.text.splitlines()[0]):
            return edit
    return None


@dataclass(frozen=True)
class Page:
    """How one group page ended, read from the stand-ins."""

    final: Edit | None
    started: float
    headline: str

    @property
    def took(self) -> float:
        return self.final.when - self.started if self.final else float("nan")

    @property
    def all_sent(self) -> bool:
        return self.headline.startswith("*all sent*")

    def describe(self) -> str:
        """ "X s to the final edit (app: Y s; *all sent*)" or why there was none."""
        if self.final is None:
            return "no final edit"
        app_says = re.search(r"in (\d+\.\d) s", self.headline)
        return (
            f"{self.took:.2f} s to the final thread edit (app: "
            f"{app_says.group(1) if app_says else '?'} s; {self.headline.split(' — ')[0]})"
        )


PAGE_TEXT = "page bench"


async def page(client: Requester, slack: TimedSlack, group: str, timeout: float) -> Page:
    """POST one ``/sms <group> page bench`` and wait (at most ``timeout``) for its final
    edit."""
    before = len(slack.edits)
    started = time.monotonic()
    await client.sms(USERS[0], f"{group} {PAGE_TEXT}")
    await wait_for(lambda: final_edit(slack.edits[before:]), timeout=timeout, poll=0.05)
    final = final_edit(slack.edits[before:])
    return Page(final, started, final.text.splitlines()[0] if final else "")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def process_cpu_self() -> float:
    """CPU seconds of this (load + stand-in) process, to tell if it was the bottleneck."""
    return cpu_seconds(os.getpid())
