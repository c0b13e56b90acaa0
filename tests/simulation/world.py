"""A seeded, randomized fault simulation of the bridge as deployed.

One seed draws a list of steps (texts to contacts, groups, a Slack user group and tel:
links, approvals and rejections, pages by mention and by alert, acks by button, ✅, reply
code and ack word, replies, STOP/START, user-group membership changes, policy reloads
(SIGHUP), kill -9, SIGTERM, Slack outages (posts, and the user-group directory failing or
hanging), database cuts, uncertain, slow and rate-limited 2Chat answers, Retry clicks),
runs them against the real app (``python -m bot``) and the Slack and 2Chat stand-ins, and
checks the invariants after every step and once everything has settled:

- I1 each person on a text or a fired tier gets at most one SMS for it (every step), and
  exactly one unless the text's thread says, for that person, that it was not sent or its
  outcome is unknown (at quiescence); a rejected text is never sent (every step);
- I2 one ladder per page, and no tier fires after its page was acked (every step);
- I3 every inbound SMS is read within two poll intervals once no fault holds reads up
  (every step), and all of them at quiescence;
- I4 every text's outcome reaches its thread once Slack is back (at quiescence, with I1);
- I5 no Retry makes 2Chat accept a send it had accepted already (part of I1: at most one);
- I6 2Chat never answers 429: calls stay under the account's limit across processes,
  but for a few after each change of that limit, until the bridge has read it;
- I7 every ladder runs to its end, and a tier that texted nobody (its user group was not
  given by Slack for as long as the tier could wait) says so in the page's thread (at
  quiescence);
- I8 every inbound SMS is acted on: a reply code acks its page, STOP and START leave the
  number opted out as the last of them says, a reply reaches Slack (at quiescence).

Timing is real (the app is a real process), so a seed replays the same steps, not
necessarily the same interleaving. A failure names the seed and the shortest step list
found that still fails (``shrink``).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.appproc import TWOCHAT_KEY, AppProcess, app_env
from tests.escalation.ladder_app import CODE_RE, INCIDENT, click
from tests.fakes.payloads import button_click
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.simulation.database import Database, postgres_database
from tests.simulation.invariants import (
    GENERAL,
    Inbound,
    Invariants,
    Sent,
    Violation,
    read_within,
)
from tests.simulation.workspace import (
    ACCOUNT_LIMITS,
    NIGHT,
    PEOPLE,
    SRE,
    WorkspaceSteps,
    blocks_of,
    sim_config,
)

__all__ = ["Step", "Violation", "draw_steps", "run_steps", "shrink"]
# Short 2Chat timeouts make a lapsed lease or claim 3 s old; sweeps and polls are quick.
FAST = {
    "TWOCHAT_CONNECT_TIMEOUT": "0.5",
    "TWOCHAT_READ_TIMEOUT": "0.5",
    "SWEEP_INTERVAL_SECONDS": "0.2",
    "SHUTDOWN_GRACE_SECONDS": "5",
    "SLACK_DIRECTORY_TTL_SECONDS": "1",  # user-group membership changes show within a second
}
# How long everything may take to settle once the faults stop, at 80 2Chat calls a minute
# (longer in proportion under a lower limit): a lapsed lease (3 s), a sweep, a ladder's
# remaining tiers (2 s each), the texts still waiting for budget, polls at their floor
# behind them, and Slack edits.
QUIESCENCE_SECONDS = 25.0
KINDS = (
    ("sms", 6),
    ("tel_sms", 1),
    ("group_sms", 2),
    ("membership", 1),
    ("intern_sms", 2),
    ("approve", 1),
    ("reject", 1),
    ("page", 3),
    ("auto_page", 1),
    ("ack_button", 1),
    ("react", 1),
    ("ack_code", 1),
    ("ack_word", 1),
    ("reply", 2),
    ("stop", 1),
    ("start", 1),
    ("retry", 1),
    ("kill", 2),
    ("sigterm", 1),
    ("slack_down", 1),
    ("slack_directory", 1),
    ("db_cut", 1),
    ("twochat_uncertain", 1),
    ("twochat_slow", 1),
    ("twochat_limit", 1),
    ("sighup", 1),
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


@dataclass
class World(WorkspaceSteps, Invariants):
    """The app processes, their stand-ins and what the steps did, for the invariants."""

    tmp: Path
    slack: SlackStandIn
    twochat: TwoChatStandIn
    seed: int
    database: Database
    apps: list[AppProcess | None] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    pages: list[tuple[str, str]] = field(default_factory=list)  # (thread ts, text)
    inbound: list[Inbound] = field(default_factory=list)  # SMS to the bridge
    calm_since: float = 0.0
    limit_changes: int = 0
    poll: str = "0.2s"
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _apps: int = 0

    def fresh_id(self) -> int:
        return next(self._ids)

    # ------------------------------------------------------------------ the apps
    def start_all(self) -> None:
        self.apps = [None] * self.database.processes
        for index in range(self.database.processes):
            self.start(index)

    def start(self, index: int) -> None:
        self._apps += 1
        run = self.tmp / f"app{self._apps}"
        run.mkdir()
        config = sim_config(self.tmp, self.poll)
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
        self.calm_since = time.monotonic()

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
            self.receive(number, code)

    def _reply(self, step: Step) -> None:
        self._inbound(step, f"on my way {next(self._ids)}")

    def _stop(self, step: Step) -> None:
        self._inbound(step, "STOP")

    def _start(self, step: Step) -> None:
        self._inbound(step, "START")

    def _inbound(self, step: Step, text: str) -> None:
        texted = sorted({str(s["to_number"]) for s in list(self.twochat.sends)})
        if texted:
            number = texted[step.pick % len(texted)]
            self.receive(number, text)

    def _retry(self, step: Step) -> None:
        values = [
            element["value"]
            for post in self.slack.posts(GENERAL)
            for block in blocks_of(self.slack.latest(post))
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
            self.calm_since = time.monotonic()

    def _slack_down(self, step: Step) -> None:
        calls = 1 + step.pick % 8
        for method in ("chat.postMessage", "chat.update"):
            self.slack.fail(method, "service_unavailable", status=503, times=calls)

    def _slack_directory(self, step: Step) -> None:
        """Slack's user-group directory fails: a few reads answer an error, or every read
        hangs for a while (the hung ones then fail, as a dropped connection would)."""
        if step.pick % 2:
            self.slack.fail(
                "usergroups.users.list", "service_unavailable", status=503, times=step.pick % 7
            )
            return
        self.slack.stall("usergroups.users.list")
        time.sleep(1 + step.amount * 2)
        self.slack.unstall()

    def _twochat_uncertain(self, step: Step) -> None:
        self.twochat.respond(500, {"message": "simulated"}, times=1)

    def _twochat_slow(self, step: Step) -> None:
        self.twochat.set_delay(step.amount)
        time.sleep(step.amount)
        self.twochat.set_delay(0)
        self.calm_since = time.monotonic()

    def _wait(self, step: Step) -> None:
        time.sleep(step.amount)

    def _page_id(self, step: Step) -> str | None:
        """The escalation id of one of the pages (the page's request id, on its board)."""
        rows = self.database.rows("SELECT id FROM escalations ORDER BY created_at")
        return str(rows[step.pick % len(rows)][0]) if rows else None

    def quiesce(self) -> None:
        """Stop every fault, make sure an app runs, and wait until the invariants that need
        everything settled hold (or the time is up: then the last violation is raised)."""
        self.slack.failures.clear()
        self.twochat.set_delay(0)
        # A lowered 2Chat limit may hold every call up for a window of the calls before it.
        per_minute = self.twochat.requests_per_minute
        slower = 80 / (per_minute or 80)
        deadline = max(time.monotonic(), self.calm_since) + QUIESCENCE_SECONDS * slower
        cap = time.monotonic() + 4 * QUIESCENCE_SECONDS
        while True:
            try:
                self.check_settled()
                return
            except Violation:
                # While texts still drain, and while their calls fill 2Chat's minute after
                # the last one, replies are read at the polls' floor: give the reads two
                # such poll intervals after the last text, within the cap.
                sends = [record.arrived for record in list(self.twochat.records)]
                moved = len({message.number for message in self.inbound})
                drained = max(sends, default=0.0) + read_within(per_minute, True, moved)
                if time.monotonic() > min(cap, max(deadline, drained)):
                    raise
                time.sleep(0.5)


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
        slack.user_groups[SRE] = sorted(PEOPLE)[:2]
        slack.user_groups[NIGHT] = ["U0DAVE"]
        twochat.limit(ACCOUNT_LIMITS[seed % len(ACCOUNT_LIMITS)])  # read by every process
        world = World(tmp, slack, twochat, seed, database)
        try:
            world.start_all()
            for step in steps:
                world.run(step)
                world.check_always()
            world.quiesce()
        finally:
            world.stop_all()


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
