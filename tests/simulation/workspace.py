"""The simulation's steps about the workspace around a text: approvals and rejections, a
Slack user group and its members, policy reloads, ✅ reactions and ack words, ``tel:``
links, alerts that page by themselves, and the 2Chat account's per-minute limit."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.appproc import AppProcess
from tests.escalation.ladder_app import ALICE, BOB, CAROL, CODE_RE, INCIDENT, ladder_config
from tests.fakes.payloads import button_click, reason_submission
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.simulation.database import Database
from tests.simulation.invariants import GENERAL, Inbound, Sent
from tests.slack.test_paging import alert

APPROVALS = "C0APPROVALS"
SRE = "S0SIMSRE"  # the Slack user group the policy's "sre" group is kept in
# The user group the ladder's tier 2 pages ("night"): dave, whom nothing else texts.
NIGHT, DAVE = "S0SIMNIGHT", "+447700900789"
PEOPLE = {"U0ALICE": ALICE, "U0BOB": BOB, "U0CAROL": CAROL}
TARGETS = {"alice": (ALICE,), "bob": (BOB,), "carol": (CAROL,), "db-oncall": (ALICE, BOB)}
# The account's per-minute limits a step switches between (2Chat's plans; trial: 30).
ACCOUNT_LIMITS = (80, 60)


def sim_config(tmp: Path, poll: str) -> Path:
    """The ladder policy, its contacts linked to Slack users, an "sre" group kept in a
    Slack user group, and tier 2 paging the "night" user group (dave) instead of carol;
    ``poll``: the replies' poll interval (what a reload changes)."""
    path = ladder_config(tmp, wait="2s", poll=poll)
    text = path.read_text().replace("      - page: [carol]\n", "      - page: night\n")
    text = text.replace(
        '  carol: "+34600000001"',
        f'  carol: "+34600000001"\n  dave: {{number: "{DAVE}", slack: U0DAVE}}',
    )
    for name, number in (("alice", ALICE), ("bob", BOB), ("carol", CAROL)):
        user = next(user for user, linked in PEOPLE.items() if linked == number)
        text = text.replace(
            f'  {name}: "{number}"', f'  {name}: {{number: "{number}", slack: {user}}}'
        )
    text = text.replace(
        "  db-oncall: [alice, bob]",
        f"  db-oncall: [alice, bob]\n  sre: {{slack_group: {SRE}}}\n"
        f"  night: {{slack_group: {NIGHT}}}",
    )
    assert f"slack_group: {SRE}" in text and "slack: U0CAROL" in text
    assert "page: night" in text and "slack: U0DAVE" in text
    path.write_text(text)
    return path


class WorkspaceSteps:
    """Steps mixed into the World; each reads what exists when it runs."""

    tmp: Path
    slack: SlackStandIn
    twochat: TwoChatStandIn
    seed: int
    apps: list[AppProcess | None]
    sent: list[Sent]
    pages: list[tuple[str, str]]
    inbound: list[Inbound]
    calm_since: float
    limit_changes: int
    poll: str
    database: Database
    running: Callable[..., AppProcess]
    fresh_id: Callable[[], int]

    def _command(self, step_pick: int, user: str, text: str) -> bool | None:
        """``/sms text`` by ``user``: True when answered with an empty 200, None when the
        app died answering (it may have recorded it)."""
        try:
            response = self.running(step_pick).command(
                text, user, GENERAL, self.slack.response_url()
            )
        except OSError:
            return None
        return response.status_code == 200 and not response.content

    def _sms(self, step: Any) -> None:
        target = sorted(TARGETS)[step.pick % len(TARGETS)]
        text = f"sim {self.seed} text {self.fresh_id()}"
        answered = self._command(step.pick, "U0ADMIN", f"{target} {text}")
        if answered is not False:
            self.sent.append(Sent(text, TARGETS[target], certain=bool(answered)))

    def _tel_sms(self, step: Any) -> None:
        """A number Slack turned into a tel: link, read from the link, not the label."""
        number = TARGETS[sorted(TARGETS)[step.pick % 3]][0]
        text = f"sim {self.seed} tel {self.fresh_id()}"
        answered = self._command(step.pick, "U0ADMIN", f"<tel:{number}|call me> {text}")
        if answered is not False:
            self.sent.append(Sent(text, (number,), certain=bool(answered)))

    def _group_sms(self, step: Any) -> None:
        """To the Slack user group: whoever is in it when the text is sent."""
        text = f"sim {self.seed} sre {self.fresh_id()}"
        answered = self._command(step.pick, "U0ADMIN", f"sre {text}")
        if answered is not False:
            self.sent.append(Sent(text, None, certain=bool(answered)))

    def receive(self, number: str, text: str) -> None:
        """``text`` from ``number``, an SMS 2Chat lists from now on."""
        uuid = self.twochat.inbound(number, text)
        self.inbound.append(Inbound(uuid, time.monotonic(), number, text))

    def _membership(self, step: Any) -> None:
        """Someone joins or leaves the user group."""
        user = sorted(PEOPLE)[step.pick % len(PEOPLE)]
        members = self.slack.user_groups.setdefault(SRE, [])
        if user in members:
            members.remove(user)
        else:
            members.append(user)

    def _intern_sms(self, step: Any) -> None:
        """A text by an approval-bound sender: it waits for an approver."""
        target = sorted(TARGETS)[step.pick % len(TARGETS)]
        self._command(step.pick, "U0INTERN", f"{target} sim {self.seed} ask {self.fresh_id()}")

    def _approval_ids(self) -> list[str]:
        return [
            str(element["value"])
            for post in self.slack.posts(APPROVALS)
            for block in blocks_of(self.slack.latest(post))
            if block.get("type") == "actions"
            for element in block["elements"]
            if element.get("action_id") == "approval_approve"
        ]

    def _approve(self, step: Any) -> None:
        if ids := self._approval_ids():
            payload = button_click(
                "U0LEAD",
                APPROVALS,
                "approval_approve",
                ids[step.pick % len(ids)],
                block_id="approval",
            )
            with contextlib.suppress(OSError):
                self.running(step.pick).interact(payload)

    def _reject(self, step: Any) -> None:
        """Reject, and give the reason in the form Slack opens for it."""
        ids = self._approval_ids()
        if not ids:
            return
        opened = len(self._views())
        payload = button_click(
            "U0LEAD", APPROVALS, "approval_reject", ids[step.pick % len(ids)], block_id="approval"
        )
        with contextlib.suppress(OSError):
            app = self.running(step.pick)
            app.interact(payload)
            deadline = time.monotonic() + 2
            while len(self._views()) <= opened and time.monotonic() < deadline:
                time.sleep(0.05)
            if len(self._views()) > opened:
                app.interact(reason_submission(self._views()[-1]["view"], "U0LEAD", "no"))

    def _views(self) -> list[dict[str, Any]]:
        return [call.args for call in list(self.slack.calls) if call.method == "views.open"]

    def _sighup(self, step: Any) -> None:
        """The policy changes on disk (the replies' poll interval) and every process is
        told to reload it."""
        self.poll = "0.3s" if self.poll == "0.2s" else "0.2s"
        sim_config(self.tmp, self.poll)
        for app in self.apps:
            if app is not None:
                app.proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        self.calm_since = time.monotonic()

    def _react(self, step: Any) -> None:
        """A ✅ on one page's board, which acks it like the button."""
        boards = [
            post["_ts"]
            for post in self.slack.posts(INCIDENT)
            if post.get("thread_ts") and "`db`" in str(post.get("text"))
        ]
        if not boards:
            return
        event = {
            "type": "reaction_added",
            "user": "U0ADMIN",
            "reaction": "white_check_mark",
            "item": {"type": "message", "channel": INCIDENT, "ts": boards[step.pick % len(boards)]},
            "event_ts": f"1900000001.{self.fresh_id():06d}",
        }
        with contextlib.suppress(OSError):
            self.running(step.pick).event(event, f"EvSimReact{self.seed}x{self.fresh_id()}")

    def _ack_word(self, step: Any) -> None:
        """``ok`` from someone a page texted."""
        paged = sorted(
            {
                str(s["to_number"])
                for s in list(self.twochat.sends)
                if CODE_RE.search(str(s.get("text", "")))
            }
        )
        if paged:
            number = paged[step.pick % len(paged)]
            self.receive(number, "ok")

    def _auto_page(self, step: Any) -> None:
        """A monitoring bot's alert that pages by itself."""
        event = alert(f"CRITICAL sim {self.seed} alert {self.fresh_id()}")
        with contextlib.suppress(OSError):
            self.running(step.pick).event(event, f"EvSimAlert{self.seed}x{self.fresh_id()}")
        self.pages.append((str(event["ts"]), str(event["attachments"][0]["text"])))

    def _twochat_limit(self, step: Any) -> None:
        """The account's per-minute limit changes (a plan change): 2Chat answers 429 past
        it, and the bridge must learn the new limit and pace under it. With two processes
        on Postgres, the one that meets the 429 reads the limit and the other paces by that
        reading from its next call (I6 allows each a few 429s per change meanwhile)."""
        now = self.twochat.requests_per_minute
        limit = ACCOUNT_LIMITS[(ACCOUNT_LIMITS.index(now) + 1) % 2] if now in ACCOUNT_LIMITS else 80
        self.twochat.limit(limit)
        self.limit_changes += 1
        # Calls made in the last minute count against a lowered limit (2Chat's window
        # slides): the bridge may have to wait until enough of them are a minute old.
        drained = self.twochat.window * max(0.0, 1 - limit / (now or 80))
        self.calm_since = time.monotonic() + drained


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)
