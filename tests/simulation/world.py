"""A seeded, randomized fault simulation of the bridge as deployed.

One seed draws a list of steps (texts, pages, acks, replies, STOP/START, kill -9, SIGTERM,
Slack outages, uncertain and slow 2Chat answers, Retry clicks), runs them against the real
app (``python -m bot``) and the Slack and 2Chat stand-ins, and checks the invariants after
every step and once everything has settled:

- I1 each person on a text or a fired tier gets at most one SMS for it (every step), and
  exactly one unless the text's thread says, for that person, that it was not sent or its
  outcome is unknown (at quiescence);
- I2 one ladder per page, and no tier fires after its page was acked (every step);
- I3 every inbound SMS from a number the bridge texted is read (at quiescence);
- I4 every text's outcome reaches its thread once Slack is back (at quiescence, with I1);
- I5 no Retry makes 2Chat accept a send it had accepted already (part of I1: at most one).

Timing is real (the app is a real process), so a seed replays the same steps, not
necessarily the same interleaving. A failure names the seed and the shortest step list
found that still fails (``shrink``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.appproc import TWOCHAT_KEY, AppProcess, app_env
from tests.escalation.ladder_app import (
    ALICE,
    BOB,
    CAROL,
    CODE_RE,
    INCIDENT,
    click,
    ladder_config,
)
from tests.fakes.payloads import button_click
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.twochat_server import TwoChatStandIn
from tests.postgres_server import POSTGRES

GENERAL = "C0GENERAL"
TARGETS = {"alice": (ALICE,), "bob": (BOB,), "carol": (CAROL,), "db-oncall": (ALICE, BOB)}
NUMBERS = (ALICE, BOB, CAROL)
# Short 2Chat timeouts make a lapsed lease or claim 3 s old; sweeps and polls are quick.
FAST = {
    "TWOCHAT_CONNECT_TIMEOUT": "0.5",
    "TWOCHAT_READ_TIMEOUT": "0.5",
    "SWEEP_INTERVAL_SECONDS": "0.2",
    "SHUTDOWN_GRACE_SECONDS": "5",
}
# How long everything may take to settle once the faults stop: a lapsed lease (3 s), a
# sweep, a ladder's remaining tiers (2 s each), polls and Slack edits.
QUIESCENCE_SECONDS = 25.0
NOT_SENT_MARKS = ("not sent", "outcome unknown", "may or may not", ":x:")
KINDS = (
    ("sms", 6),
    ("page", 3),
    ("ack_button", 1),
    ("ack_code", 1),
    ("reply", 2),
    ("stop", 1),
    ("start", 1),
    ("retry", 1),
    ("kill", 2),
    ("sigterm", 1),
    ("slack_down", 1),
    ("db_cut", 1),
    ("twochat_uncertain", 1),
    ("twochat_slow", 1),
    ("wait", 3),
)


@dataclass(frozen=True)
class Step:
    """One thing that happens; ``pick`` chooses among what exists when it runs (a target, a
    page, a number), ``amount`` sizes it (a wait, an outage)."""

    kind: str
    pick: int
    amount: float

    def __str__(self) -> str:
        return f"{self.kind}(pick={self.pick}, amount={self.amount:g})"


def draw_steps(seed: int, count: int) -> list[Step]:
    """The seed's steps, drawn before anything runs (so a shrunk list replays as data)."""
    rng = random.Random(seed)
    kinds = [kind for kind, _ in KINDS]
    weights = [weight for _, weight in KINDS]
    return [
        Step(rng.choices(kinds, weights)[0], rng.randrange(1000), round(rng.uniform(0.1, 1.5), 2))
        for _ in range(count)
    ]


class Violation(AssertionError):
    """An invariant that did not hold."""


@dataclass
class Sent:
    """A /sms the bridge accepted (or may have: the app died while answering)."""

    text: str
    numbers: tuple[str, ...]
    certain: bool


@dataclass
class Database:
    """Where the app processes keep their state, and how the invariants read it: a SQLite
    file (one process), or a Postgres schema behind a proxy the steps can cut (two)."""

    url: str
    processes: int
    proxy: TcpProxy | None = None
    direct: str | None = None  # Postgres without the proxy, for the checks

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.direct is not None:
            with psycopg.connect(self.direct) as conn:
                return list(conn.execute(sql.replace("?", "%s")).fetchall())
        path = self.url.removeprefix("sqlite:///")
        if not Path(path).exists():
            return []
        # Read-write, never ``mode=ro``: a read-only reader may miss what is still in the
        # write-ahead log while an app process restarts.
        conn = sqlite3.connect(path, timeout=5)
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()


@dataclass
class World:
    """The app processes, their stand-ins and what the steps did, for the invariants."""

    tmp: Path
    slack: SlackStandIn
    twochat: TwoChatStandIn
    seed: int
    database: Database
    apps: list[AppProcess | None] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    pages: list[tuple[str, str]] = field(default_factory=list)  # (thread ts, text)
    inbound: list[str] = field(default_factory=list)  # uuids of SMS to the bridge
    log: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _apps: int = 0

    # ------------------------------------------------------------------ the apps
    def start_all(self) -> None:
        self.apps = [None] * self.database.processes
        for index in range(self.database.processes):
            self.start(index)

    def start(self, index: int) -> None:
        self._apps += 1
        run = self.tmp / f"app{self._apps}"
        run.mkdir()
        config = ladder_config(self.tmp, wait="2s")
        env = app_env(
            self.slack.api_url,
            self.twochat.url,
            config,
            run,
            DATABASE_URL=self.database.url,
            **FAST,
        )
        app = AppProcess(env, run / "app.log")
        self.apps[index] = app
        app.wait_ready(timeout=30)

    def running(self, pick: int = 0) -> AppProcess:
        """One of the processes, as ``pick`` chooses."""
        app = self.apps[pick % len(self.apps)]
        assert app is not None
        return app

    def stop_all(self) -> None:
        for index, app in enumerate(self.apps):
            if app is not None:
                app.terminate()
                self.apps[index] = None

    # ------------------------------------------------------------------ steps
    def run(self, step: Step) -> None:
        getattr(self, f"_{step.kind}")(step)

    def _sms(self, step: Step) -> None:
        target = sorted(TARGETS)[step.pick % len(TARGETS)]
        text = f"sim {self.seed} text {next(self._ids)}"
        try:
            response = self.running(step.pick).command(
                f"{target} {text}", "U0ADMIN", GENERAL, self.slack.response_url()
            )
        except OSError:
            self.sent.append(Sent(text, TARGETS[target], certain=False))
            return
        if response.status_code == 200 and not response.content:
            self.sent.append(Sent(text, TARGETS[target], certain=True))

    def _page(self, step: Step) -> None:
        ts = f"1900000000.{next(self._ids):06d}"
        text = f"sim {self.seed} page {next(self._ids)}"
        event = {
            "type": "app_mention",
            "user": "U0DEV1",
            "text": f"<@UBOT> page {text}",
            "ts": ts,
            "channel": INCIDENT,
            "event_ts": ts,
        }
        with contextlib.suppress(OSError):
            self.running(step.pick).event(event, f"EvSim{self.seed}x{next(self._ids)}")
        self.pages.append((ts, text))

    def _ack_button(self, step: Step) -> None:
        escalation = self._page_id(step)
        if escalation is not None:
            with contextlib.suppress(OSError, AssertionError):
                click(self.running(step.pick), "U0ADMIN", "ladder_ack", escalation)

    def _ack_code(self, step: Step) -> None:
        codes = [
            (str(s["to_number"]), match.group(1))
            for s in list(self.twochat.sends)
            if (match := CODE_RE.search(str(s.get("text", ""))))
        ]
        if codes:
            number, code = codes[step.pick % len(codes)]
            self.inbound.append(self.twochat.inbound(number, code))

    def _reply(self, step: Step) -> None:
        self._inbound(step, f"on my way {next(self._ids)}")

    def _stop(self, step: Step) -> None:
        self._inbound(step, "STOP")

    def _start(self, step: Step) -> None:
        self._inbound(step, "START")

    def _inbound(self, step: Step, text: str) -> None:
        texted = sorted({str(s["to_number"]) for s in list(self.twochat.sends)})
        if texted:
            self.inbound.append(self.twochat.inbound(texted[step.pick % len(texted)], text))

    def _retry(self, step: Step) -> None:
        values = [
            element["value"]
            for post in self.slack.posts(GENERAL)
            for block in _blocks(self.slack.latest(post))
            if block.get("block_id") == "retry"
            for element in block["elements"]
        ]
        if not values:
            return
        value = values[step.pick % len(values)]
        payload = button_click("U0ADMIN", GENERAL, "send_retry", value, block_id="retry")
        with contextlib.suppress(OSError):
            self.running(step.pick).interact(payload)

    def _kill(self, step: Step) -> None:
        time.sleep(step.amount / 3)  # somewhere in the middle of what the last steps started
        index = step.pick % len(self.apps)
        self.running(index).kill()
        self.start(index)

    def _sigterm(self, step: Step) -> None:
        index = step.pick % len(self.apps)
        self.running(index).terminate()
        self.start(index)

    def _db_cut(self, step: Step) -> None:
        """The database unreachable for a while (Postgres only: SQLite is a local file)."""
        if self.database.proxy is not None:
            self.database.proxy.cut()
            time.sleep(1 + step.amount * 2)
            self.database.proxy.restore()

    def _slack_down(self, step: Step) -> None:
        calls = 1 + step.pick % 8
        for method in ("chat.postMessage", "chat.update"):
            self.slack.fail(method, "service_unavailable", status=503, times=calls)

    def _twochat_uncertain(self, step: Step) -> None:
        self.twochat.respond(500, {"message": "simulated"}, times=1)

    def _twochat_slow(self, step: Step) -> None:
        self.twochat.set_delay(step.amount)
        time.sleep(step.amount)
        self.twochat.set_delay(0)

    def _wait(self, step: Step) -> None:
        time.sleep(step.amount)

    def _page_id(self, step: Step) -> str | None:
        """The escalation id of one of the pages (the page's request id, on its board)."""
        rows = self.database.rows("SELECT id FROM escalations ORDER BY created_at")
        return str(rows[step.pick % len(rows)][0]) if rows else None

    # ------------------------------------------------------------------ invariants

    def accepted(self) -> Counter[tuple[str, str]]:
        """(text, number) -> how many times 2Chat accepted it."""
        return Counter(
            (str(r.body.get("text")), str(r.body.get("to_number")))
            for r in list(self.twochat.records)
            if r.status == 202
        )

    def check_always(self) -> None:
        """I1 (at most one), I5 and I2: what must hold after every step."""
        twice = [key for key, n in self.accepted().items() if n > 1 and "Acked by" not in key[0]]
        if twice:
            raise Violation(f"I1/I5: texted more than once: {twice}")
        codes = self.database.rows(
            "SELECT code, COUNT(*) FROM escalations GROUP BY code HAVING COUNT(*) > 1"
        )
        late = self.database.rows(
            "SELECT t.escalation_id FROM escalation_steps t JOIN escalation_steps a "
            "ON a.escalation_id = t.escalation_id AND a.kind = 'ack' "
            "WHERE t.kind = 'tier' AND t.id > a.id"
        )
        if codes:
            raise Violation(f"I2: several ladders share a reply code: {codes}")
        if late:
            raise Violation(f"I2: a tier fired after its page was acked: {late}")

    def check_settled(self) -> None:
        """I1 (exactly one), I3 and I4, once faults stopped and everything settled."""
        self.check_always()
        accepted = self.accepted()
        for sent in self.sent:
            thread = self._thread_of(sent.text)
            if thread is None:
                if sent.certain:
                    raise Violation(f"I4: no request message for {sent.text!r}")
                continue
            for number in sent.numbers:
                said = any(
                    f"({number})" in line and any(mark in line for mark in NOT_SENT_MARKS)
                    for line in thread.splitlines()
                )
                if not accepted[(sent.text, number)] and not said:
                    raise Violation(
                        f"I1/I4: {number} neither texted {sent.text!r} nor told why in the "
                        f"thread:\n{thread}"
                    )
        read = {uuid for (uuid,) in self.database.rows("SELECT uuid FROM inbound_messages")}
        unread = [uuid for uuid in self.inbound if uuid not in read]
        if unread:
            raise Violation(f"I3: inbound SMS never read: {unread}")

    def _thread_of(self, text: str) -> str | None:
        """Everything said in the threads of the request messages quoting ``text`` (a
        process that dies between posting one and recording it leaves it without replies:
        the process that takes over posts another), or None when there is none."""
        posts = self.slack.posts(GENERAL)
        threads = [
            post["_ts"]
            for post in posts
            if not post.get("thread_ts") and str(post.get("text")).endswith(f"> {text}")
        ]
        if not threads:
            return None
        return "\n".join(
            str(self.slack.latest(reply).get("text"))
            for reply in posts
            if reply.get("thread_ts") in threads
        )

    def quiesce(self) -> None:
        """Stop every fault, make sure an app runs, and wait until the invariants that need
        everything settled hold (or the time is up: then the last violation is raised)."""
        self.slack.failures.clear()
        self.twochat.set_delay(0)
        deadline = time.monotonic() + QUIESCENCE_SECONDS
        while True:
            try:
                self.check_settled()
                return
            except Violation:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def run_steps(seed: int, steps: list[Step], tmp: Path, backend: str = "sqlite") -> None:
    """Run ``steps`` in a fresh world: one process on SQLite, or two on one Postgres
    database; raises Violation naming the broken invariant."""
    with contextlib.ExitStack() as stack:
        slack = stack.enter_context(SlackStandIn())
        twochat = stack.enter_context(TwoChatStandIn(api_key=TWOCHAT_KEY))
        if backend == "postgres":
            database = stack.enter_context(postgres_database())
        else:
            database = Database(f"sqlite:///{tmp / 'sim.db'}", processes=1)
        world = World(tmp, slack, twochat, seed, database)
        try:
            world.start_all()
            for step in steps:
                world.run(step)
                world.check_always()
            world.quiesce()
        finally:
            world.stop_all()


@contextlib.contextmanager
def postgres_database() -> Iterator[Database]:
    """A fresh schema in the test Postgres, reached by the apps through a cuttable proxy."""
    schema = f"sim_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    direct = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    target = urlsplit(POSTGRES)
    try:
        with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
            proxied = urlunsplit(
                target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}")
            )
            yield Database(
                f"{proxied}?options=-csearch_path%3D{schema}", 2, proxy=proxy, direct=direct
            )
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def shrink(steps: list[Step], fails: Callable[[list[Step]], bool], budget: float) -> list[Step]:
    """The shortest sub-list of ``steps`` found within ``budget`` seconds that still fails:
    chunks, then single steps, are dropped while the failure stays."""
    deadline = time.monotonic() + budget
    current = list(steps)
    chunk = max(1, len(current) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        start, dropped = 0, False
        while start < len(current) and time.monotonic() < deadline:
            candidate = current[:start] + current[start + chunk :]
            if candidate and fails(candidate):
                current, dropped = candidate, True
            else:
                start += chunk
        if not dropped:
            chunk //= 2
    return current
