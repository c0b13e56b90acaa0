"""What the app-level ladder tests share: a policy with a two-tier ladder on the incident
channel, paging by mention, the board, and clicks and reactions on it.

Tiers wait a second or two (the policy allows sub-second waits) and the sweeper runs every
0.1 s, so a ladder climbs in real time within a test without sleeping through minutes.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.appproc import AppProcess
from tests.conftest import policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

INCIDENT = "C0INCIDENT"
ALICE, BOB, CAROL = "+447700900123", "+447700900456", "+34600000001"
CODE_RE = re.compile(r" Reply ([A-Z][0-9]{1,3}) to ack$")
SWEEP = {"SWEEP_INTERVAL_SECONDS": "0.1"}
_ids = itertools.count(1)
T = TypeVar("T")


def ladder_config(
    tmp: Path, wait: str = "1s", acked_sms: str | None = None, poll: str = "0.2s"
) -> Path:
    """The shipped policy, its incident channel escalating tier 1 (db-oncall) to carol;
    replies polled every ``poll``, and every 0.1 s while a page awaits its ack."""
    extra = f"\n    acked_sms: {json.dumps(acked_sms)}" if acked_sms is not None else ""
    ladder = (
        "escalations:\n  db:\n    tiers:\n"
        f"      - page: db-oncall\n        wait: {wait}\n"
        f"      - page: [carol]\n        wait: {wait}{extra}\n"
    )
    replies = f"replies:\n  poll_interval: {poll}\n  page_poll_interval: 0.1s\n"
    return policy_file(
        tmp,
        {
            "channels:                 # incident": ladder + "channels:                 # incident",
            "    page: db-oncall       #": "    escalation: db\n    page: db-oncall       #",
            "per_recipient_per_hour: 10000": "per_recipient_per_hour: 10000\n" + replies,
        },
    )


def page(app: AppProcess, text: str = "DB primary is down", user: str = "U0DEV1") -> str:
    """``@sms-bridge page <text>`` in the incident channel; the mention's ts (the thread)."""
    ts = f"1810000000.{next(_ids):06d}"
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT> page {text}",
        "ts": ts,
        "channel": INCIDENT,
        "event_ts": ts,
    }
    assert app.event(event, f"EvLadder{next(_ids):06d}").status_code == 200
    return ts


def sends_to(twochat: TwoChatStandIn, number: str) -> list[str]:
    """The texts sent to ``number`` so far."""
    return [str(s["text"]) for s in list(twochat.sends) if s["to_number"] == number]


def code_in(text: str) -> str:
    match = CODE_RE.search(text)
    assert match, f"no reply code at the end of {text!r}"
    return match.group(1)


def board(slack: SlackStandIn, thread: str, timeout: float = 5) -> dict[str, Any]:
    """The pager board in ``thread`` as it reads now (waiting for it to be posted)."""

    def find() -> dict[str, Any] | None:
        for post in slack.posts(INCIDENT):
            if post.get("thread_ts") == thread and "`db`" in str(post.get("text")):
                return slack.latest(post)
        return None

    found: dict[str, Any] = slack.wait_until(find, timeout, f"the pager board in {thread}")
    return found


def board_says(slack: SlackStandIn, thread: str, words: str, timeout: float = 5) -> dict[str, Any]:
    found: dict[str, Any] = slack.wait_until(
        lambda: words in str((b := board(slack, thread)).get("text")) and b,
        timeout,
        f"the board saying {words!r}; it reads {board(slack, thread).get('text')!r}",
    )
    return found


def buttons(message: dict[str, Any]) -> list[str]:
    blocks = message.get("blocks") or []
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def click(app: AppProcess, user: str, action_id: str, escalation_id: str) -> None:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "channel": {"id": INCIDENT},
        "container": {"type": "message", "channel_id": INCIDENT},
        "actions": [
            {"action_id": action_id, "block_id": "b", "value": escalation_id, "type": "button"}
        ],
    }
    assert app.interact(payload).status_code == 200


def react(app: AppProcess, user: str, ts: str, reaction: str = "white_check_mark") -> None:
    event = {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": INCIDENT, "ts": ts},
        "event_ts": f"1810000001.{next(_ids):06d}",
    }
    assert app.event(event, f"EvReact{next(_ids):06d}").status_code == 200


def escalation_id(message: dict[str, Any]) -> str:
    """The ladder's id, which every board button carries."""
    blocks = message.get("blocks") or []
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    values = [e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert values, f"the board has no buttons: {message}"
    return str(values[0])


def ephemerals(slack: SlackStandIn, user: str) -> list[str]:
    return [
        str(call.args.get("text"))
        for call in list(slack.calls)
        if call.method == "chat.postEphemeral" and call.args.get("user") == user
    ]


def settle(seconds: float) -> None:
    """Time for something that must NOT happen (a tier, a second broadcast) to have had
    its chance: a few sweeps and polls past the moment it would have happened."""
    time.sleep(seconds)


def eventually(condition: Callable[[], T], timeout: float, what: str) -> T:
    """``condition()`` once truthy, polled: for state no stand-in is told about (the store)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return result
