"""The bridge running for real (``python -m bot``, SQLite) against the local Slack and 2Chat
stand-ins, with everything Slack would show kept in the order it arrived.

No credentials and no network: the stand-ins are the test suite's own, on 127.0.0.1, and
the requests are signed exactly as Slack signs them.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web

from bot.config.loader import load_policy
from bot.core.model import Policy
from tests.appproc import TWOCHAT_KEY, AppProcess, app_env
from tests.fakes.payloads import button_click
from tests.fakes.slack_server import SlackStandIn, parsed_json
from tests.fakes.twochat_server import TwoChatStandIn

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_POLICY = ROOT / "config" / "bridge.yaml"
GENERAL, INCIDENT, APPROVALS = "C0GENERAL", "C0INCIDENT", "C0APPROVALS"
BOT_USER = "UBOT"
# The shipped policy, plus what the tour shows beyond it: an escalation ladder on the
# incident channel (so a page carries a reply code) and reply polling (so SMS replies and
# acks come back). Polling is quick here because the stand-in costs nothing.
DEMO_ADDITIONS = """
escalations:
  db:
    tiers:
      - page: db-oncall
        wait: 10m
      - page: [carol]
        wait: 10m
replies:
  poll_interval: 0.5s
  page_poll_interval: 0.2s
  ack_words: [ack, ok]
"""


def demo_policy(folder: Path) -> Path:
    """The shipped policy with the demo's additions, written to ``folder``."""
    text = SHIPPED_POLICY.read_text()
    paging = "    page: db-oncall       #"
    if paging not in text:
        raise RuntimeError(f"{SHIPPED_POLICY} no longer pages db-oncall from C0INCIDENT")
    text = text.replace(paging, "    escalation: db\n" + paging, 1) + DEMO_ADDITIONS
    path = folder / "bridge.yaml"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Shown:
    """One thing Slack would show: a message, an edit of one, a private note or a form."""

    kind: str  # "post", "edit", "private", "form"
    channel: str
    text: str
    blocks: Any
    thread: bool = False  # a reply in a thread (or an edit of one)
    to_user: str = ""
    ts: str = ""  # a message's id, which its edits carry too


class Button(NamedTuple):
    label: str
    action_id: str
    value: str


def buttons(shown: Shown) -> list[Button]:
    """The buttons on a message, as a click needs them."""
    return [
        Button(
            str((element.get("text") or {}).get("text", "")),
            str(element.get("action_id")),
            str(element.get("value")),
        )
        for block in shown.blocks or []
        if isinstance(block, dict) and block.get("type") == "actions"
        for element in block.get("elements") or []
        if isinstance(element, dict)
    ]


class RecordingSlack(SlackStandIn):
    """The Slack stand-in, keeping every message, edit, private note and form it accepted
    in one ordered list (the stand-in keeps API calls and response_url posts apart)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.shown: list[Shown] = []

    def _answer(
        self, method: str, args: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        answer = super()._answer(method, args, auth)
        if answer[1].get("ok"):
            shown = self._shown(method, args, str(answer[1].get("ts") or ""))
            if shown is not None:
                self.record(lambda: self.shown.append(shown))
        return answer

    def _shown(self, method: str, args: dict[str, Any], ts: str) -> Shown | None:
        channel, text = str(args.get("channel", "")), str(args.get("text") or "")
        blocks = parsed_json(args.get("blocks"))
        if method == "chat.postMessage":
            return Shown("post", channel, text, blocks, thread=bool(args.get("thread_ts")), ts=ts)
        if method == "chat.update":
            edited = str(args.get("ts", ""))
            with self._changed:
                original = next(
                    (s for s in self.shown if s.ts == edited and s.kind == "post"), None
                )
            thread = original is not None and original.thread
            return Shown("edit", channel, text, blocks, thread=thread, ts=edited)
        if method == "chat.postEphemeral":
            return Shown("private", channel, text, blocks, to_user=str(args.get("user", "")))
        if method in ("views.open", "views.push"):
            view = parsed_json(args.get("view")) or {}
            title = str((view.get("title") or {}).get("text", ""))
            return Shown("form", "", title, view.get("blocks"))
        return None

    async def _response(self, request: web.Request) -> web.Response:
        payload = await request.json()  # aiohttp keeps the body for the base class
        answer = await super()._response(request)
        if answer.status == 200:
            text, blocks = str(payload.get("text") or ""), parsed_json(payload.get("blocks"))
            self.record(lambda: self.shown.append(Shown("private", "", text, blocks)))
        return answer


class Workspace:
    """A Slack workspace and a 2Chat account, both local, with the bridge installed."""

    def __init__(
        self, slack: RecordingSlack, twochat: TwoChatStandIn, app: AppProcess, policy: Policy
    ) -> None:
        self.slack = slack
        self.twochat = twochat
        self.app = app
        self.policy = policy
        self.read = 0  # how much of ``slack.shown`` has been handed out
        self._ids = itertools.count(1)

    # --- what people do ----------------------------------------------------------------
    def command(self, text: str, user: str, channel: str = GENERAL) -> None:
        """``/sms <text>`` typed by ``user`` in ``channel``. A quick answer (help, a refusal)
        comes back in Slack's own request, as the command's private reply."""
        response = self.app.command(text, user, channel, self.slack.response_url())
        response.raise_for_status()
        if response.content:
            answer = response.json()
            reply = Shown("private", channel, str(answer.get("text") or ""), answer.get("blocks"))
            self.slack.record(lambda: self.slack.shown.append(reply))

    def mention(self, text: str, user: str, channel: str = INCIDENT) -> None:
        """``@sms-bridge <text>`` posted in ``channel``."""
        ts = f"1810000000.{next(self._ids):06d}"
        event = {
            "type": "app_mention",
            "user": user,
            "text": f"<@{BOT_USER}> {text}",
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
        }
        self.app.event(event, f"EvDemo{next(self._ids):06d}").raise_for_status()

    def click(self, user: str, action_id: str, value: str, channel: str) -> None:
        """A button pressed by ``user`` on a message in ``channel``."""
        self.app.interact(button_click(user, channel, action_id, value)).raise_for_status()

    def sms_from(self, sender: str, text: str) -> None:
        """An SMS that ``sender`` (a number, or a contact in the policy) sends to the bridge's
        main number."""
        self.twochat.inbound(self.policy.contacts.get(sender, sender), text)

    # --- what Slack shows --------------------------------------------------------------
    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 15) -> Any:
        return self.slack.wait_until(condition, timeout, what)

    def wait_for_shown(
        self, matches: Callable[[Shown], bool], what: str, timeout: float = 15
    ) -> Shown:
        """The first thing shown since the last ``news`` that ``matches``."""
        found: Shown = self.wait_for(
            lambda: next((s for s in self.slack.shown[self.read :] if matches(s)), None),
            what,
            timeout,
        )
        return found

    def news(self, quiet: float = 0.0, timeout: float = 10) -> list[Shown]:
        """What Slack showed since the last call; with ``quiet``, first wait until nothing new
        has arrived for that long (for an interactive line whose outcome is not known)."""
        if quiet:
            deadline = time.monotonic() + timeout
            seen = -1
            while seen != len(self.slack.shown) and time.monotonic() < deadline:
                seen = len(self.slack.shown)
                time.sleep(quiet)
        fresh = self.slack.shown[self.read :]
        self.read += len(fresh)
        return fresh


@contextmanager
def running_workspace() -> Iterator[Workspace]:
    """Start the stand-ins and the bridge; stop them all on the way out."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sms-bridge-demo-")))
        slack = stack.enter_context(RecordingSlack())
        twochat = stack.enter_context(TwoChatStandIn(api_key=TWOCHAT_KEY))
        env = app_env(slack.api_url, twochat.url, demo_policy(folder), folder, LOG_LEVEL="INFO")
        app = AppProcess(env, folder / "app.log")
        stack.callback(app.terminate)
        app.wait_ready(timeout=60)
        yield Workspace(slack, twochat, app, load_policy(env["SMS_BRIDGE_CONFIG"]))
