"""Rosters that live in Slack, end to end: the app runs as ``python -m bot`` and reads user
groups and profiles from the Slack stand-in when texts are sent."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.slack.listeners.compose_modal import ComposeMeta, ComposeValues, compose_view
from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_modal import POLICY, envelope, live_view, state_values

CHANNEL, INCIDENT = "C0GENERAL", "C0INCIDENT"
ALICE, BOB, DAN = "+447700900123", "+447700900456", "+447700900789"
TTL = 0.5
LINKS = {
    'alice: "+447700900123"': 'alice: {number: "+447700900123", slack: U0ALICE}',
    'bob: "+447700900456"': 'bob: {number: "+447700900456", slack: U0BOB}\n  dan: {slack: U0DAN}',
    "db-oncall: [alice, bob]": "db-oncall: {slack_group: S0DBONCALL}\n  pair: [alice, bob]",
    "  - users: [U0INTERN]": "  - users: [S0SENDERS]\n    to: [pair]\n  - users: [U0INTERN]",
}
_ids = itertools.count(1)


def start(start_app: StartApp, tmp: Path, **replacements: str) -> AppProcess:
    return start_app(
        policy_file(tmp, {**LINKS, **replacements}), SLACK_DIRECTORY_TTL_SECONDS=str(TTL)
    )


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    return start(start_app, tmp_path_factory.mktemp("rosters"))


@pytest.fixture
def workspace(slack: SlackStandIn) -> SlackStandIn:
    """The Slack stand-in with the on-call user group and the senders' user group, once
    the app's cached rosters from the last test have expired."""
    slack.user_groups.update(
        {"S0DBONCALL": ["U0ALICE", "U0CAROL"], "S0SENDERS": [f"U0OPS{next(_ids)}"]}
    )
    time.sleep(TTL)
    return slack


def sms(app: AppProcess, slack: SlackStandIn, text: str, user: str = "U0ADMIN") -> str:
    """Run /sms and return the ack's text (empty for an accepted send)."""
    response = app.command(text, user, CHANNEL, slack.response_url())
    assert response.status_code == 200, response.text
    return response.json()["text"] if response.content else ""


def numbers(twochat: TwoChatStandIn, n: int) -> list[str]:
    return sorted(send["to_number"] for send in twochat.wait_for_sends(n))


def test_a_mention_of_a_linked_contact_is_texted(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sms(app, workspace, "<@U0ALICE|alice> db-1 is down") == ""
    assert numbers(twochat, 1) == [ALICE]
    assert twochat.sends[0]["text"] == "db-1 is down"


def test_a_slack_user_without_a_number_is_refused_privately(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    answer = sms(app, workspace, "<@U0DAN|dan> disk gone")
    assert "Not sent" in answer and "U0DAN" in answer and "has no phone number" in answer
    answer = sms(app, workspace, "<@U0ZED|zed> disk gone")
    assert "U0ZED" in answer and "is not linked to a contact" in answer
    time.sleep(0.3)
    assert twochat.sends == []
    assert not [post for post in workspace.posts() if "disk gone" in post["text"]]


def test_a_user_groups_members_are_texted_and_one_without_a_number_is_reported(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sms(app, workspace, "<!subteam^S0DBONCALL|@db-oncall> disk full") == ""
    assert numbers(twochat, 1) == [ALICE]
    [note] = workspace.wait_for_response(1)
    assert "Not reachable, no phone number: <@U0CAROL>" in note["text"]
    assert note["response_type"] == "ephemeral"


def test_a_membership_change_is_picked_up_once_the_cache_expires(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    sms(app, workspace, "db-oncall first")
    assert numbers(twochat, 1) == [ALICE]
    workspace.user_groups["S0DBONCALL"] = ["U0BOB"]
    sms(app, workspace, "db-oncall second")  # within the TTL: the cached roster
    assert numbers(twochat, 2) == [ALICE, ALICE]
    time.sleep(TTL + 0.2)
    sms(app, workspace, "db-oncall third")
    assert numbers(twochat, 3) == [ALICE, ALICE, BOB]
    lookups = [c for c in workspace.calls if c.method == "usergroups.users.list"]
    assert {c.args["usergroup"] for c in lookups} >= {"S0DBONCALL", "S0SENDERS"}


def test_a_sender_in_a_user_group_may_send_and_one_removed_may_not(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    [member] = workspace.user_groups["S0SENDERS"]
    assert sms(app, workspace, "pair shift starts", user=member) == ""
    assert numbers(twochat, 2) == [ALICE, BOB]
    assert "not allowed to send" in sms(app, workspace, "pair hi", user="U0STRANGER")
    workspace.user_groups["S0SENDERS"] = []
    time.sleep(TTL + 0.2)
    assert "you are not allowed to send SMS from Slack" in sms(
        app, workspace, "pair again", user=member
    )
    assert len(twochat.sends) == 2


def test_a_page_mentioning_a_linked_contact_pages_them_in_the_thread(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    ts = "1800000001.000001"
    event = {
        "type": "app_mention",
        "user": "U0ADMIN",
        "text": "<@UBOT> page <!subteam^S0DBONCALL|@db-oncall> db-1 is down",
        "ts": ts,
        "channel": INCIDENT,
        "event_ts": ts,
    }
    assert app.event(event, f"Ev{next(_ids):08d}").status_code == 200
    assert numbers(twochat, 1) == [ALICE]
    assert twochat.sends[0]["text"] == "db-1 is down"
    note = workspace.wait_until(
        lambda: [p for p in workspace.thread_replies(INCIDENT) if "Not reachable" in p["text"]],
        5,
        "the unreachable note in the page's thread",
    )
    assert note[0]["thread_ts"] == ts and "<@U0CAROL>" in note[0]["text"]


def test_profile_phones_are_off_by_default(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    workspace.profiles["U0DAN"] = {"phone": "07700 900789"}
    assert "has no phone number in the policy" in sms(app, workspace, "dan hi")
    assert not [c for c in workspace.calls if c.method == "users.profile.get"]


def test_profile_phones_number_linked_people_when_turned_on(
    start_app: StartApp,
    tmp_path: Path,
    workspace: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    profiles = start(
        start_app,
        tmp_path,
        **{"mask_numbers: false": "mask_numbers: false\n  slack_profile_numbers: true"},
    )
    workspace.profiles.update({"U0DAN": {"phone": "07700 900789"}, "U0CAROL": {"phone": ""}})
    assert sms(profiles, workspace, "dan hi") == ""
    assert numbers(twochat, 1) == [DAN]
    workspace.user_groups["S0DBONCALL"] = ["U0ALICE", "U0DAN", "U0CAROL"]
    time.sleep(TTL + 0.2)
    assert sms(profiles, workspace, "db-oncall disk full") == ""
    assert numbers(twochat, 3) == [ALICE, DAN, DAN]
    [note] = workspace.wait_for_response(1)
    assert "<@U0CAROL>" in note["text"]


def submit_people(app: AppProcess, slack: SlackStandIn, people: list[Any]) -> Any:
    """Submit the compose modal with nothing typed in To and ``people`` picked."""
    values = state_values(text="db-1 is down")
    values["to_people"] = {"to_people": {"type": "multi_users_select", "selected_users": people}}
    meta = json.dumps({"channel_id": CHANNEL, "response_url": slack.response_url()})
    view = live_view(meta, values, view_id=f"V{next(_ids):010d}")
    response = app.post_signed(envelope("view_submission", "U0ADMIN", view))
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


def test_the_modal_texts_people_picked_in_its_users_select(
    app: AppProcess, workspace: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    view = compose_view(POLICY, "U0ADMIN", ComposeValues(), ComposeMeta(CHANNEL))
    [people] = [b for b in view["blocks"] if b.get("block_id") == "to_people"]
    assert people["element"]["type"] == "multi_users_select" and people["optional"]
    assert submit_people(app, workspace, ["U0DAN"])["errors"]["to"] == (
        "<@U0DAN> has no phone number in the policy"
    )
    assert "to_people" in submit_people(app, workspace, ["U0ALICE", "<!channel>"])["errors"]
    assert submit_people(app, workspace, ["U0ALICE"]) is None
    assert numbers(twochat, 1) == [ALICE]
