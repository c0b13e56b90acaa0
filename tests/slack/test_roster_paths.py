"""Slack user groups wherever a person or a list works, end to end with the shipped
``config/oncall-example.yaml``: the app runs as ``python -m bot`` against the Slack and
2Chat stand-ins, and every path that texts people or asks "may this user do this" reads the
rosters the same way."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.core.segments import analyze
from tests.appproc import AppProcess
from tests.conftest import ROOT, StartApp
from tests.escalation.ladder_app import (
    board,
    board_says,
    click,
    code_in,
    escalation_id,
    eventually,
    sends_to,
)
from tests.fakes.payloads import button_click
from tests.fakes.slack_server import Call, SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.sending.test_uncertain_answers import wait_until_settled

# The policies here raise requests_per_minute to 6000: so does the account.
pytestmark = pytest.mark.twochat_limit(6000)

EXAMPLE = ROOT / "config" / "oncall-example.yaml"
INCIDENT, GENERAL = "C0INCIDENT", "C0GENERAL"
ALICE, BOB, CAROL, DAVE = "+447700900123", "+447700900456", "+34600000001", "+447700900789"
ERIN = "+447700900321"
TTL = "0.3"
FAST = {"SLACK_DIRECTORY_TTL_SECONDS": TTL, "SWEEP_INTERVAL_SECONDS": "0.1"}
# Who is in which Slack user group (the example's and the ones the variations add).
WORKSPACE = {
    "S0DBONCALL": ["U0ALICE", "U0BOB"],
    "S0SRE": ["U0SRE1", "U0SRE2"],
    "S0LEADS": ["U0LEAD2"],
    "S0WEB": ["U0ERIN"],
}
TIER_ONE = "      - page: db-oncall\n        wait: 5m"
TIER_TWO = "      - page: db-leads\n        wait: 10m"
_ids = itertools.count(1)


def oncall(tmp: Path, replacements: dict[str, str] | None = None) -> Path:
    """The shipped example with limits a test module does not hit, replies polled fast, the
    approvers' user group S0LEADS, a second on-call group kept in Slack (web-oncall: erin),
    and an intern whose texts need approval; plus ``replacements`` (old -> new)."""
    text = EXAMPLE.read_text()
    base = {
        "per_sender_per_hour: 30": "per_sender_per_hour: 10000",
        "per_recipient_per_hour: 10": "per_recipient_per_hour: 10000",
        "requests_per_minute: 80": "requests_per_minute: 6000",
        "poll_interval: 60s": "poll_interval: 0.2s",
        "page_poll_interval: 15s": "page_poll_interval: 0.1s",
        "approvers: [U0LEAD]": "approvers: [U0LEAD, S0LEADS]",
        "  db-leads: [carol, dave]": (
            "  db-leads: [carol, dave]\n  web-oncall: {slack_group: S0WEB}"
        ),
        '  dave: {number: "+447700900789", slack: U0DAVE}': (
            '  dave: {number: "+447700900789", slack: U0DAVE}\n'
            f'  erin: {{number: "{ERIN}", slack: U0ERIN}}'
        ),
        "approvals:": (
            '  - users: [U0INTERN]\n    to: ["*"]\n    approval: required\n'
            "  - users: [U0TRAINEE]\n    to: [db-oncall]\n    approval: required\napprovals:"
        ),
    }
    for old, new in {**base, **(replacements or {})}.items():
        assert old in text, f"{old!r} is not in the example"
        text = text.replace(old, new)
    path = tmp / "oncall.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def workspace(slack: SlackStandIn) -> SlackStandIn:
    """The Slack stand-in with the user groups, once the app's cached rosters expired."""
    slack.user_groups.update({group: list(users) for group, users in WORKSPACE.items()})
    time.sleep(float(TTL))
    return slack


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    return start_app(oncall(tmp_path_factory.mktemp("oncall")), **FAST)


def new_ts() -> str:
    return f"1830000000.{next(_ids):06d}"


def deliver(app: AppProcess, event: dict[str, Any]) -> str:
    response = app.event(event, f"EvRoster{next(_ids):06d}")
    assert response.status_code == 200, response.text
    return str(event["ts"])


def alert(app: AppProcess, text: str, channel: str = INCIDENT) -> str:
    """A monitoring bot's message in ``channel``; its ts (the page's thread)."""
    ts = new_ts()
    return deliver(
        app,
        {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B0ALERTS",
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "channel_type": "channel",
        },
    )


def mention(app: AppProcess, text: str, user: str = "U0SRE1", channel: str = INCIDENT) -> str:
    """``@sms-bridge <text>`` in ``channel``; the mention's ts (the page's thread)."""
    ts = new_ts()
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    return deliver(app, event)


def sms(app: AppProcess, slack: SlackStandIn, text: str, user: str) -> str:
    """Run /sms; the ack's text ("" for an accepted send)."""
    response = app.command(text, user, GENERAL, slack.response_url())
    assert response.status_code == 200, response.text
    return str(response.json()["text"]) if response.content else ""


def numbers(twochat: TwoChatStandIn, n: int) -> list[str]:
    return sorted(str(send["to_number"]) for send in twochat.wait_for_sends(n))


def ephemerals(slack: SlackStandIn, user: str) -> list[str]:
    return [
        str(call.args.get("text"))
        for call in list(slack.calls)
        if call.method == "chat.postEphemeral" and call.args.get("user") == user
    ]


def told(slack: SlackStandIn, user: str, words: str) -> str:
    """The private message to ``user`` that says ``words``, once it comes."""
    found: str = slack.wait_until(
        lambda: next((text for text in ephemerals(slack, user) if words in text), None),
        5,
        f"{user} being told {words!r}; told {ephemerals(slack, user)}",
    )
    return found


def settle() -> None:
    """Time for something that must NOT happen to have had its chance."""
    time.sleep(0.5)


# --- 1. auto_page to a user group --------------------------------------------------------


def test_an_auto_page_to_a_user_group_pages_its_members(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    thread = alert(app, "CRITICAL: db-1 replication stopped")
    assert numbers(twochat, 2) == [ALICE, BOB]
    code = code_in(str(twochat.sends[0]["text"]))
    assert twochat.sends[0]["text"] == f"CRITICAL: db-1 replication stopped Reply {code} to ack"
    assert "Next: tier 2" in board(workspace, thread)["text"]


def test_an_auto_page_whose_roster_slack_could_not_read_says_so_and_the_next_alert_pages(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    workspace.fail("usergroups.users.list", "fatal_error", times=len(WORKSPACE))
    thread = alert(app, "CRITICAL: disk full on db-2")
    refusal = workspace.wait_until(
        lambda: [p for p in workspace.thread_replies(INCIDENT) if p.get("thread_ts") == thread],
        5,
        "the auto-page's refusal in the alert's thread",
    )[0]["text"]
    assert "could not read db-oncall's members from Slack" in refusal
    assert "fatal_error" in refusal and "try again" in refusal
    assert twochat.sends == []
    alert(app, "CRITICAL: disk full on db-2")  # the same alert again: Slack answers now
    assert numbers(twochat, 2) == [ALICE, BOB]


# --- 2. a page naming a user group --------------------------------------------------------


def test_a_page_naming_a_user_group_pages_that_group_not_the_channels(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    mention(app, "page web-oncall checkout is failing")
    assert numbers(twochat, 1) == [ERIN]
    assert str(twochat.sends[0]["text"]).startswith("checkout is failing")


def test_a_page_naming_a_user_group_works_in_a_channel_without_a_default(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    mention(app, "page db-oncall replica lag 5 min", channel=GENERAL)
    assert numbers(twochat, 2) == [ALICE, BOB]
    assert twochat.sends[0]["text"] == "replica lag 5 min"
    assert not ephemerals(workspace, "U0SRE1")


# --- 3. ladder tiers and repeats naming a user group -----------------------------------


def test_ladder_tiers_and_repeats_naming_a_user_group_text_its_members(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    swapped = {
        TIER_ONE: "      - page: db-leads\n        wait: 1s",
        TIER_TWO: "      - page: [web-oncall, db-oncall]\n        wait: 1s",
    }
    workspace.user_groups["S0WEB"] = ["U0ERIN", "U0NONUM"]  # U0NONUM has no number
    ladder = start_app(oncall(tmp_path, swapped), **FAST)
    thread = mention(ladder, "page db-1 is down")
    assert numbers(twochat, 2) == [CAROL, DAVE]  # tier 1: a list group
    assert numbers(twochat, 5) == sorted([CAROL, DAVE, ALICE, BOB, ERIN])  # tier 2: Slack
    board_says(workspace, thread, "tier 2 of 2")
    assert "nobody to text" not in board(workspace, thread)["text"]
    missed = workspace.wait_until(
        lambda: [p for p in workspace.thread_replies(INCIDENT) if "Not reachable" in p["text"]],
        5,
        "the note on whom tier 2 could not text",
    )[0]
    assert missed["thread_ts"] == thread and "no phone number: <@U0NONUM>" in missed["text"]
    # The repeat round climbs the same ladder and reads the roster again.
    workspace.user_groups["S0DBONCALL"] = ["U0ALICE"]
    eventually(lambda: len(sends_to(twochat, ALICE)) == 2, 8, "round 2 reaching tier 2")
    settle()
    assert len(sends_to(twochat, ERIN)) == 2 and len(sends_to(twochat, BOB)) == 1


def thread_note(workspace: SlackStandIn, thread: str, starts: str, what: str) -> str:
    """The text of the first reply in ``thread`` that starts with ``starts``."""
    return str(
        workspace.wait_until(
            lambda: [
                p
                for p in workspace.thread_replies(INCIDENT)
                if p.get("thread_ts") == thread and str(p["text"]).startswith(starts)
            ],
            8,
            what,
        )[0]["text"]
    )


UNREAD_WEB = "could not read web-oncall's members from Slack (Slack answered fatal_error)"


@pytest.mark.parametrize(
    ("tier_two", "texted"),
    [("web-oncall", []), ("[web-oncall, db-leads]", [CAROL, DAVE])],
    ids=["alone", "beside-a-list"],
)
def test_a_ladder_tier_whose_roster_slack_could_not_read_says_why_in_the_page_thread(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
    tier_two: str,
    texted: list[str],
) -> None:
    """A tier's user group Slack did not give is named in the page's thread with why, both
    when the tier then texts nobody (its board line alone, "nobody to text", read as though
    the roster were empty) and when it texts the tier's other rosters (its members
    dropped out without a word)."""
    swapped = {
        TIER_ONE: "      - page: db-leads\n        wait: 1s",
        TIER_TWO: f"      - page: {tier_two}\n        wait: 1s",
    }
    ladder = start_app(oncall(tmp_path, swapped), **FAST)
    thread = mention(ladder, "page db-1 is down")
    assert numbers(twochat, 2) == [CAROL, DAVE]  # tier 1: a list group
    workspace.fail("usergroups.users.list", "fatal_error", times=1000)
    if texted:
        assert numbers(twochat, 4) == sorted([CAROL, DAVE, *texted])
        note = thread_note(workspace, thread, ":warning: Not texted", "the note on tier 2")
    else:
        note = thread_note(workspace, thread, "*Tier 2:*", "the note on tier 2")
        assert "Nothing was sent to 2Chat" in note
        board_says(workspace, thread, "nobody to text")
    assert UNREAD_WEB in note


def test_a_ladder_tier_waits_for_slack_to_give_its_roster_then_texts_it(
    start_app: StartApp, workspace: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """Slack failing as a tier comes due does not pass the tier over: the sweeper asks
    again (for as long as the ladder waits after that tier), and once Slack answers the
    tier texts its user group, with no note that it texted nobody."""
    swapped = {
        TIER_ONE: "      - page: db-leads\n        wait: 1s",
        TIER_TWO: "      - page: web-oncall\n        wait: 10s",
    }
    ladder = start_app(oncall(tmp_path, swapped), **FAST)
    thread = mention(ladder, "page db-1 is down")
    assert numbers(twochat, 2) == [CAROL, DAVE]  # tier 1: a list group
    workspace.fail("usergroups.users.list", "fatal_error", times=12)  # a few sweeps' reads
    assert numbers(twochat, 3) == sorted([CAROL, DAVE, ERIN])  # tier 2, once Slack answers
    board_says(workspace, thread, "tier 2 of 2")
    replies = [p for p in workspace.thread_replies(INCIDENT) if p.get("thread_ts") == thread]
    assert not [p for p in replies if str(p["text"]).startswith("*Tier 2:*")]
    assert "nobody to text" not in board(workspace, thread)["text"]


def test_an_auto_page_names_the_roster_slack_could_not_read_and_texts_the_others(
    start_app: StartApp, workspace: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """An alert pages the first tier of its channel's ladder: a user group there Slack did
    not give is named in the alert's thread with why, and the tier's other rosters are
    texted."""
    swapped = {TIER_ONE: "      - page: [db-leads, web-oncall]\n        wait: 5m"}
    app = start_app(oncall(tmp_path, swapped), **FAST)
    workspace.fail("usergroups.users.list", "fatal_error", times=1000)
    thread = alert(app, "CRITICAL: disk full on db-2")
    assert numbers(twochat, 2) == [CAROL, DAVE]
    note = thread_note(workspace, thread, ":warning: Not texted", "the note on web-oncall")
    assert UNREAD_WEB in note


# --- 4. a roster change while a text waits for approval -------------------------------


def approval_request(app: AppProcess, slack: SlackStandIn, user: str, text: str) -> str:
    """/sms by a sender whose texts need approval; the request id its Approve button holds."""
    assert sms(app, slack, text, user) == ""
    post = slack.wait_until(
        lambda: [p for p in slack.posts(GENERAL) if "approval_approve" in json.dumps(p)],
        5,
        "the approval request",
    )[-1]
    blocks = post["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return str(next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]))


def approve(app: AppProcess, user: str, request_id: str) -> None:
    payload = button_click(user, GENERAL, "approval_approve", request_id, block_id="a")
    assert app.interact(payload).status_code == 200


@pytest.mark.parametrize("sender", ["U0TRAINEE", "U0INTERN"])  # to: [db-oncall], and "*"
def test_a_roster_member_removed_before_approval_is_not_texted_and_the_others_are(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn, sender: str
) -> None:
    request_id = approval_request(app, workspace, sender, "db-oncall rotate the db-1 keys")
    workspace.user_groups["S0DBONCALL"] = ["U0ALICE"]  # bob leaves the on-call group
    time.sleep(float(TTL) + 0.1)
    approve(app, "U0LEAD", request_id)
    assert numbers(twochat, 1) == [ALICE]
    outcome = workspace.wait_until(
        lambda: [p for p in workspace.thread_replies(GENERAL) if "bob" in p["text"]],
        5,
        "the outcome naming bob",
    )[-1]["text"]
    assert "not sent: no longer on the roster" in outcome
    settle()
    assert [s["to_number"] for s in twochat.sends] == [ALICE]


# --- 6. user group members may do everything their group may ---------------------------


def test_members_of_a_sender_group_may_ack_and_approver_group_members_escalate_and_stop(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    ladder = start_app(oncall(tmp_path, {"wait: 5m": "wait: 30s"}), **FAST)
    first = mention(ladder, "page db-1 is down", user="U0SRE1")
    numbers(twochat, 2)
    page = escalation_id(board(workspace, first))
    click(ladder, "U0LEAD2", "ladder_escalate", page)  # an approver through S0LEADS
    assert numbers(twochat, 4) == sorted([ALICE, BOB, CAROL, DAVE])
    click(ladder, "U0SRE2", "ladder_ack", page)  # a sender through S0SRE, not the pager
    board_says(workspace, first, "*Acked* by <@U0SRE2> with the Ack button")
    second = mention(ladder, "page db-2 is down", user="U0SRE1")
    numbers(twochat, 8)  # tier 1 again, and the "acked" SMS to the three not acking
    second_page = escalation_id(board(workspace, second))
    click(ladder, "U0STRANGER", "ladder_ack", second_page)
    assert "can ack it" in told(workspace, "U0STRANGER", "can ack it")
    click(ladder, "U0LEAD2", "ladder_stop", second_page)
    board_says(workspace, second, "*Paging stopped* by <@U0LEAD2>")
    assert not [text for text in ephemerals(workspace, "U0SRE2") if "no_entry" in text]
    assert not [text for text in ephemerals(workspace, "U0LEAD2") if "no_entry" in text]


def test_members_of_a_sender_group_get_help_and_status_like_listed_senders(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    help_text = sms(app, workspace, "help", "U0SRE1")
    assert "You may text: anyone" in help_text and "not in the SMS allowlist" not in help_text
    assert sms(app, workspace, "status SMOnothing", "U0SRE1") == ""
    [answer] = workspace.wait_for_response(1)
    assert "has no SMS with message_id `SMOnothing`" in answer["text"]
    assert sms(app, workspace, "status SMOnothing", "U0STRANGER") == ""
    answer = workspace.wait_for_response(2)[1]
    assert "Only people who may send SMS can look up sends" in answer["text"]


def test_app_home_shows_approvals_waiting_to_members_of_an_approver_group(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sms(app, workspace, "alice please call the DC", "U0INTERN") == ""
    workspace.wait_until(
        lambda: [p for p in workspace.posts(GENERAL) if "Approve" in json.dumps(p)],
        5,
        "the approval request",
    )
    deliver(app, {"type": "app_home_opened", "user": "U0LEAD2", "tab": "home", "ts": new_ts()})
    views = workspace.wait_until(
        lambda: [c for c in list(workspace.calls) if c.method == "views.publish"],
        5,
        "the Home tab",
    )
    home = json.dumps(views[-1].args)
    assert "Waiting for approval (1)" in home and "please call the DC" in home


# --- 7. a Slack lookup that fails during a decision -------------------------------------


def test_a_roster_slack_does_not_answer_in_time_is_reported_not_as_a_refusal(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    workspace.slow("usergroups.users.list", 2.5)
    answer = sms(app, workspace, "alice db-1 is down", "U0SRE1")
    assert "not allowed" not in answer
    assert "could not read user group S0SRE" in answer and "try again" in answer
    assert "Slack did not answer in time" in answer
    log = app.wait_for_log("Slack lookup for S0SRE failed: Slack did not answer in time")
    assert "failed: \n" not in log
    assert twochat.sends == []


# --- the shipped example, end to end ----------------------------------------------------


def test_the_shipped_oncall_example_auto_pages_escalates_and_is_acked_by_code(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    text = EXAMPLE.read_text()
    for old, new in {
        "wait: 5m": "wait: 1s",
        "wait: 10m": "wait: 30s",
        "poll_interval: 60s": "poll_interval: 0.2s",
        "page_poll_interval: 15s": "page_poll_interval: 0.1s",
    }.items():
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "example.yaml").write_text(text)
    example = start_app(tmp_path / "example.yaml", **FAST)
    thread = alert(example, "SEV1: payments db unreachable")
    assert numbers(twochat, 2) == [ALICE, BOB]  # tier 1: the Slack user group
    code = code_in(str(twochat.sends[0]["text"]))
    opened = board(workspace, thread)["text"]
    assert "Next: tier 2 (db-leads)" in opened and "+44" not in opened
    assert numbers(twochat, 4) == sorted([ALICE, BOB, CAROL, DAVE])  # nobody acked: tier 2
    board_says(workspace, thread, ": carol, dave")
    twochat.inbound(DAVE, code.lower())
    board_says(workspace, thread, "*Acked* by dave by SMS", timeout=10)  # sends paced at 80/min
    acked = twochat.wait_for_sends(7, timeout=10)[4:]
    assert sorted(s["to_number"] for s in acked) == sorted([ALICE, BOB, CAROL])
    assert all(str(s["text"]).startswith("Acked by dave at ") for s in acked)
    settle()
    assert len(twochat.sends) == 7  # no round 2 after the ack
    shown = json.dumps([workspace.latest(post) for post in workspace.posts(INCIDENT)])
    assert not [number for number in (ALICE, BOB, CAROL, DAVE) if number in shown]


# --- 10. mask_numbers on the pager board ---------------------------------------------------


def test_the_pager_board_masks_the_numbers_a_tier_names(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    erik = "+447700900777"
    tiers = {TIER_TWO: f'      - page: [dave, "{erik}"]\n        wait: 10m'}
    masked = start_app(oncall(tmp_path, tiers), **FAST)
    thread = mention(masked, "page db-1 is down")
    numbers(twochat, 2)
    first = board(workspace, thread)["text"]
    assert "Next: tier 2 (dave, +44•••••0777)" in first
    click(masked, "U0LEAD", "ladder_escalate", escalation_id(board(workspace, thread)))
    board_says(workspace, thread, "+44•••••0777")  # the edit: who tier 2 texted
    assert erik in [s["to_number"] for s in twochat.wait_for_sends(4)]
    shown = [
        str(call.args.get("text")) + json.dumps(call.args.get("blocks"))
        for call in list(workspace.calls)
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral")
    ]
    assert not [text for text in shown if erik in text]


# --- 8. an ack word from someone with several open pages ------------------------------


def test_an_ack_word_with_several_open_pages_asks_by_sms_for_the_code_and_acks_nothing(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    dana = "+447700900444"  # on call alone here, and texted by no other app of this module
    contact = {
        '  carol: "+34600000001"': (
            f'  carol: "+34600000001"\n  dana: {{number: "{dana}", slack: U0DANA}}'
        ),
        "wait: 5m": "wait: 30s",
    }
    workspace.user_groups["S0DBONCALL"] = ["U0DANA"]
    ladder = start_app(oncall(tmp_path, contact), **FAST)
    first = mention(ladder, "page disk full on db-1")
    first_code = code_in(str(twochat.wait_for_sends(1)[0]["text"]))
    second = mention(ladder, "page replica lag on db-2")
    second_code = code_in(str(twochat.wait_for_sends(2)[1]["text"]))
    board_says(workspace, second, ": dana")
    twochat.inbound(dana, "ok")
    asked = eventually(lambda: sends_to(twochat, dana)[2:], 5, "the SMS asking dana for a code")
    codes = {f"{second_code} or {first_code}", f"{first_code} or {second_code}"}
    assert len(asked) == 1 and asked[0] in {
        f"You have 2 open pages. Reply {both} to ack the one you take." for both in codes
    }
    settle()
    threads = json.dumps([workspace.latest(p) for p in workspace.posts(INCIDENT)])
    assert "Acknowledged by" not in threads and "Acked" not in threads
    assert "reply code" in board(workspace, first)["text"]
    assert "reply code" in board(workspace, second)["text"]
    twochat.inbound(dana, first_code)
    board_says(workspace, first, "*Acked* by dana by SMS")
    assert "reply code" in board(workspace, second)["text"]


# --- 9. the page text and its reply code within max_segments ----------------------------


def test_a_typed_page_the_reply_code_would_push_over_the_limit_is_refused_not_cut(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    typed = "db-1 is down: " + "x" * 436  # 450 characters: 3 GSM-7 segments on its own
    mention(app, f"page {typed}")
    refusal = told(workspace, "U0SRE1", "Not sent")
    assert "4 SMS segments" in refusal and "reply code" in refusal and "limit is 3" in refusal
    settle()
    assert twochat.sends == []


def test_a_long_alert_is_cut_in_its_own_alphabet_and_the_thread_says_so(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    thread = alert(app, "CRITICAL: db-1 " + "lag " * 200)
    sent = twochat.wait_for_sends(2)[0]["text"]
    code = code_in(str(sent))
    assert str(sent).endswith(f"... Reply {code} to ack")
    assert analyze(str(sent)).encoding == "GSM-7" and analyze(str(sent)).segments == 3
    assert len(str(sent)) > 400  # not halved by a UCS-2 ellipsis
    note = workspace.wait_until(
        lambda: [p for p in workspace.thread_replies(INCIDENT) if "shortened" in p["text"]],
        5,
        "the note that the alert was shortened",
    )[0]
    assert note["thread_ts"] == thread and "3 SMS segments" in note["text"]


# --- 5. profile phones under Slack's rate limit -------------------------------------------


def page_a_big_profile_roster(
    start_app: StartApp, workspace: SlackStandIn, tmp_path: Path, lookups_per_minute: int
) -> tuple[str, set[str]]:
    """An auto-page to a 300-member user group whose phones are on Slack profiles, with
    Slack's rate limits kept over a minute shortened to 2 s (100 profiles per 2 s); the
    app paces ``lookups_per_minute`` (as if its minute were a real one)."""
    members = [f"U0M{n:03d}" for n in range(300)]
    workspace.user_groups["S0DBONCALL"] = members
    workspace.profiles.update(
        {user: {"phone": f"+4477009{n:05d}"} for n, user in enumerate(members, 1)}
    )
    workspace.enforce_people_rate = True
    workspace.people_minute = 2.0  # Slack's minute, shortened: 100 profiles per 2 s
    profiles = {"mask_numbers: true": "mask_numbers: true\n  slack_profile_numbers: true"}
    pace = {"SLACK_PROFILE_LOOKUPS_PER_MINUTE": str(lookups_per_minute)}
    big = start_app(oncall(tmp_path, profiles), **FAST, **pace)
    thread = alert(big, "CRITICAL: the whole fleet is down")
    return thread, {f"+4477009{n:05d}" for n in range(1, 301)}


def refused_lookups(workspace: SlackStandIn) -> list[Call]:
    return [
        c for c in list(workspace.calls) if c.method == "users.profile.get" and not c.args["_ok"]
    ]


def test_a_big_roster_of_profile_phones_is_paged_whole_under_slacks_rate_limit(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    """Paced faster than Slack allows (a pace set too high, or another app sharing the
    limit): the 429s Slack answers are waited out, and nobody is left out."""
    thread, roster = page_a_big_profile_roster(start_app, workspace, tmp_path, 6000)
    eventually(
        lambda: roster <= {str(s["to_number"]) for s in list(twochat.sends)}, 30, "all 300 texted"
    )
    assert len([s for s in twochat.sends if s["to_number"] in roster]) == 300
    assert refused_lookups(workspace), "Slack's rate limit was never reached: proves nothing"
    settle()
    notes = [p["text"] for p in workspace.thread_replies(INCIDENT) if p.get("thread_ts") == thread]
    assert not [note for note in notes if "no phone number" in note or "lookup failed" in note]


def test_profile_lookups_are_paced_under_slacks_tier_and_never_refused(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    """users.profile.get's tier is 100 a minute: the app takes a burst of 20, then spreads
    the rest of the minute's calls evenly, so a big roster provokes no 429 at all. (Paced
    at 2000 a "minute" against Slack's 100 per 2 s: 20 + 33 a second, 86 in any 2 s.)"""
    _, roster = page_a_big_profile_roster(start_app, workspace, tmp_path, 2000)
    eventually(
        lambda: roster <= {str(s["to_number"]) for s in list(twochat.sends)}, 30, "all 300 texted"
    )
    assert refused_lookups(workspace) == []


def test_a_profile_slack_would_not_give_is_reported_as_a_failed_lookup_not_as_no_number(
    start_app: StartApp,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    workspace.user_groups["S0DBONCALL"] = ["U0ALICE", "U0NEW"]
    workspace.profiles["U0NEW"] = {"phone": "+447700900555"}
    workspace.fail("users.profile.get", "fatal_error", times=5)
    profiles = {"mask_numbers: true": "mask_numbers: true\n  slack_profile_numbers: true"}
    app = start_app(oncall(tmp_path, profiles), **FAST)
    thread = mention(app, "page db-oncall db-1 is down", channel=GENERAL)
    assert numbers(twochat, 1) == [ALICE]
    note = workspace.wait_until(
        lambda: [p for p in workspace.thread_replies(GENERAL) if p.get("thread_ts") == thread],
        5,
        "the note on who was not reached",
    )[0]["text"]
    assert "Slack profile lookup failed: <@U0NEW>" in note and "no phone number" not in note


def test_a_member_of_an_approver_group_may_retry_a_send_whose_outcome_is_unknown(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.respond(202, {"success": True})  # queued with no message id: outcome unknown
    assert sms(app, workspace, "carol the db-1 disk is full", "U0SRE1") == ""
    reply = workspace.wait_until(
        lambda: [p for p in workspace.thread_replies(GENERAL) if "send_retry" in json.dumps(p)],
        5,
        "the outcome with its Retry button",
    )[0]
    blocks = reply["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    send_id = next(
        e["value"] for b in blocks if b.get("block_id") == "retry" for e in b["elements"]
    )
    wait_until_settled(app, workspace, send_id, "U0LEAD2")
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0LEAD2"},  # an approver through S0LEADS, not the requester
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "channel": {"id": GENERAL},
        "container": {"type": "message", "channel_id": GENERAL},
        "actions": [{"action_id": "send_retry", "block_id": "retry", "value": send_id}],
    }
    assert app.interact(payload).status_code == 200
    eventually(lambda: len(sends_to(twochat, CAROL)) == 2, 5, "the retried send")
    refused = [text for text in ephemerals(workspace, "U0LEAD2") if "no_entry" in text]
    assert len(refused) == 1 and "not retried yet" in refused[0]  # only while it settled
