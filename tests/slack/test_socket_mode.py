"""Socket Mode end to end: the app runs as ``python -m bot`` with SLACK_APP_TOKEN and no
signing secret, connects to the Socket Mode stand-in through apps.connections.open, and
gets slash commands, interactions and events as envelopes it must acknowledge."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.appproc import AppProcess, app_env
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.socket_mode import APP_TOKEN, SocketModeStandIn
from tests.fakes.twochat_server import TwoChatStandIn

# The policies here raise requests_per_minute to 6000: so does the account.
pytestmark = pytest.mark.twochat_limit(6000)

CHANNEL, APPROVALS, INCIDENT = "C0GENERAL", "C0APPROVALS", "C0INCIDENT"
ALICE, BOB, CAROL = "+447700900123", "+447700900456", "+34600000001"
_ids = itertools.count(1)


def socket_env(**extra: str) -> dict[str, str]:
    """Socket Mode settings: the app-level token, and no signing secret (none is needed)."""
    return {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": "", **extra}


@pytest.fixture(scope="module")
def socket_server(slack_server: SlackStandIn) -> Iterator[SocketModeStandIn]:
    with SocketModeStandIn(slack_server) as server:
        yield server


@pytest.fixture
def link(socket_server: SocketModeStandIn) -> SocketModeStandIn:
    socket_server.reset()
    return socket_server


@pytest.fixture(scope="module")
def app(
    socket_server: SocketModeStandIn,
    start_app: StartApp,
    tmp_path_factory: pytest.TempPathFactory,
) -> AppProcess:
    """One app in Socket Mode; requested after the stand-in so it is stopped before it."""
    tmp = tmp_path_factory.mktemp("socket")
    fast = "per_recipient_per_hour: 10000\n  requests_per_minute: 6000"
    process = start_app(policy_file(tmp, {"per_recipient_per_hour: 10000": fast}), **socket_env())
    socket_server.wait_connected()
    return process


def settle() -> None:
    """Give a wrongly repeated send the time to show up before asserting there was none."""
    time.sleep(0.3)


def acks_of(link: SocketModeStandIn, envelope_id: str) -> list[dict[str, Any]]:
    return [ack for ack in list(link.acks) if ack.get("envelope_id") == envelope_id]


def calls(slack: SlackStandIn, method: str) -> list[dict[str, Any]]:
    return [call.args for call in list(slack.calls) if call.method == method]


def parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def reply_with(slack: SlackStandIn, channel: str, checks: int) -> dict[str, Any]:
    """The thread reply once it shows ``checks`` successful recipients."""
    return slack.wait_until(
        lambda: [
            r for r in slack.thread_replies(channel) if r["text"].count("message_id") >= checks
        ],
        5,
        f"a reply with {checks} message ids in {channel}; calls: {slack.calls}",
    )[-1]


# --- slash commands ------------------------------------------------------------------------


def test_connects_with_the_app_token_and_needs_no_http_endpoint(
    app: AppProcess, slack: SlackStandIn, link: SocketModeStandIn
) -> None:
    assert link.open_sockets() == 1
    assert link.other == []  # nothing but acks ever goes back to Slack
    # Bolt verifies no signatures in Socket Mode, so there must be no endpoint to forge.
    assert app.http.post("/slack/events", content="payload=%7B%7D").status_code == 404
    assert app.http.get("/healthz").json()["ok"] is True


def test_slash_command_texts_once_and_is_acked(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, link: SocketModeStandIn
) -> None:
    envelope = link.command("alice disk full on db-1", "U0DEV1", CHANNEL, slack.response_url())
    ack = link.wait_for_ack(envelope)
    assert not ack.get("payload")  # an accepted send is acked with an empty answer
    [sent] = twochat.wait_for_sends(1)
    assert sent["to_number"] == ALICE and sent["text"] == "disk full on db-1"
    reply = reply_with(slack, CHANNEL, 1)
    assert ":white_check_mark: alice (+447700900123)" in reply["text"]
    settle()
    assert len(twochat.sends) == 1
    assert len(acks_of(link, envelope)) == 1


def test_help_comes_back_in_the_ack_payload(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, link: SocketModeStandIn
) -> None:
    envelope = link.command("help", "U0DEV1", CHANNEL, slack.response_url())
    payload = link.wait_for_ack(envelope)["payload"]
    assert payload["response_type"] == "ephemeral"
    assert "/sms <to> <text>" in payload["text"]
    assert slack.posts() == [] and twochat.sends == []


def test_refusal_comes_back_in_the_ack_payload(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, link: SocketModeStandIn
) -> None:
    envelope = link.command("alice hi", "U0STRANGER", CHANNEL, slack.response_url())
    text = link.wait_for_ack(envelope)["payload"]["text"]
    assert text.startswith(":no_entry: Not sent:")
    assert "you are not allowed to send SMS from Slack" in text
    settle()
    assert twochat.sends == []


# --- interactions --------------------------------------------------------------------------


def click(link: SocketModeStandIn, user: str, action_id: str, value: str) -> str:
    return link.interact(
        {
            "type": "block_actions",
            "user": {"id": user},
            "team": {"id": "T0TEAM"},
            "api_app_id": "A0APP",
            "channel": {"id": APPROVALS},
            "container": {"type": "message", "channel_id": APPROVALS},
            "trigger_id": "1.2.trigger",
            "actions": [
                {"action_id": action_id, "block_id": "approval", "value": value, "type": "button"}
            ],
        }
    )


def test_approve_button_sends_exactly_once(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, link: SocketModeStandIn
) -> None:
    requested = link.command("alice please call me", "U0INTERN", CHANNEL, slack.response_url())
    assert not link.wait_for_ack(requested).get("payload")
    [post] = slack.wait_for_posts(1, channel=APPROVALS)
    buttons = [
        element
        for block in parsed(post["blocks"])
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    approve = next(b for b in buttons if b["action_id"] == "approval_approve")
    assert twochat.sends == []
    first = click(link, "U0ADMIN", "approval_approve", approve["value"])
    assert not link.wait_for_ack(first).get("payload")
    [sent] = twochat.wait_for_sends(1)
    assert sent["to_number"] == ALICE and sent["text"] == "please call me"
    # This click may come while the app still stores the approval message's ts; then the
    # click and the post's follow-up may both close the message, with the same edit (one
    # edit twice, never none). On a loaded machine this test saw two edits.
    closes = slack.wait_until(lambda: calls(slack, "chat.update"), 15, "the approval closed")
    assert {(close["channel"], close["ts"]) for close in closes} == {(APPROVALS, post["_ts"])}
    assert all("Approved by <@U0ADMIN>" in close["text"] for close in closes)
    # A second click (a double click, or another approver) sends nothing more.
    second = click(link, "U0LEAD", "approval_approve", approve["value"])
    link.wait_for_ack(second)
    slack.wait_until(
        lambda: [c for c in calls(slack, "chat.postEphemeral") if c["user"] == "U0LEAD"],
        5,
        "the 'already approved' note",
    )
    settle()
    assert len(twochat.sends) == 1


def submission(view: dict[str, Any], user: str, typed: dict[str, str]) -> dict[str, Any]:
    """The view_submission Slack sends for the modal the app opened, with ``typed`` filled
    in by block_id and every other input left as the app set it up."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        state: dict[str, Any] = {"type": element["type"]}
        if element["type"] == "plain_text_input":
            state["value"] = typed.get(block["block_id"], element.get("initial_value"))
        elif element["type"] == "static_select":
            state["selected_option"] = element.get("initial_option")
        else:
            state["selected_options"] = element.get("initial_options", [])
        values[block["block_id"]] = {element["action_id"]: state}
    live = {**view, "id": "V0001", "hash": "h1", "state": {"values": values}}
    return {
        "type": "view_submission",
        "team": {"id": "T0TEAM", "domain": "test"},
        "user": {"id": user, "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "trigger_id": "1.2.3",
        "view": live,
    }


def open_compose(link: SocketModeStandIn, slack: SlackStandIn, user: str) -> dict[str, Any]:
    """``/sms`` alone opens the compose modal; the view the app sent to views.open."""
    envelope = link.command("", user, CHANNEL, slack.response_url())
    assert not link.wait_for_ack(envelope).get("payload")
    opened = slack.wait_until(lambda: calls(slack, "views.open"), 5, "views.open")
    return dict(parsed(opened[-1]["view"]))


def test_compose_modal_submission_closes_it_and_sends(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, link: SocketModeStandIn
) -> None:
    view = open_compose(link, slack, "U0DEV1")
    envelope = link.interact(submission(view, "U0DEV1", {"to": "carol", "text": "from the form"}))
    assert not link.wait_for_ack(envelope).get("payload")  # an empty answer closes the modal
    [sent] = twochat.wait_for_sends(1)
    assert sent["to_number"] == CAROL and sent["text"] == "from the form"
    assert "message_id `SMO" in reply_with(slack, CHANNEL, 1)["text"]


def test_invalid_submission_errors_come_back_in_the_ack(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, link: SocketModeStandIn
) -> None:
    view = open_compose(link, slack, "U0DEV1")
    envelope = link.interact(submission(view, "U0DEV1", {"to": "nobody", "text": "hi"}))
    payload = link.wait_for_ack(envelope)["payload"]
    assert payload["response_action"] == "errors"
    assert list(payload["errors"]) == ["to"]
    assert "'nobody' is not a contact" in payload["errors"]["to"]
    settle()
    assert twochat.sends == []


# --- events --------------------------------------------------------------------------------


def mention(text: str, user: str = "U0DEV1") -> dict[str, Any]:
    ts = f"1800000100.{next(_ids):06d}"
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT> {text}",
        "ts": ts,
        "channel": INCIDENT,
        "event_ts": ts,
    }


def test_mention_pages_and_its_redelivery_pages_nobody_twice(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, link: SocketModeStandIn
) -> None:
    event = mention("page db-oncall replica lag is 5 min")
    event_id = f"EvSock{next(_ids):06d}"
    first = link.event(event, event_id)
    link.wait_for_ack(first)
    sends = twochat.wait_for_sends(2)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    assert {send["text"] for send in sends} == {"replica lag is 5 min"}
    reply = reply_with(slack, INCIDENT, 2)
    assert reply["thread_ts"] == event["ts"]
    # Slack redelivers when it thinks the ack was late: same event_id, retry_attempt 1.
    again = link.event(event, event_id, retry=1)
    assert link.sent[-1]["retry_attempt"] == 1
    link.wait_for_ack(again)
    settle()
    assert len(twochat.sends) == 2
    assert len(slack.thread_replies(INCIDENT)) == 1


# --- startup and shutdown (these need bot.slack.transport.socket_mode wired into the server) -


@pytest.mark.app
def test_rejected_app_token_stops_the_app_with_one_line(
    slack_server: SlackStandIn, twochat_server: TwoChatStandIn, tmp_path: Path
) -> None:
    wrong = "xapp-1-A0APP-1-not-a-token-slack-knows"
    env = app_env(
        slack_server.api_url,
        twochat_server.url,
        policy_file(tmp_path),
        tmp_path,
        **socket_env(SLACK_APP_TOKEN=wrong),
    )
    process = AppProcess(env, tmp_path / "app.log")
    try:
        code = process.proc.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the app kept running with a rejected token:\n{process.log()[-2000:]}")
    log = process.log()
    process.terminate()
    assert code == 1, log
    assert "Traceback" not in log
    named = [line for line in log.splitlines() if "SLACK_APP_TOKEN" in line]
    assert len(named) == 1, log
    assert "invalid_auth" in named[0]
    assert wrong not in log


def test_sigterm_ends_in_time_when_slack_never_answers_the_close(
    slack_server: SlackStandIn, start_app: StartApp, tmp_path: Path
) -> None:
    """Its own stand-in and token, so the module's app keeps its connection untouched."""
    token = "xapp-1-A0APP-2-sigterm-test"
    with SocketModeStandIn(slack_server, app_token=token) as quiet:
        grace = 4.0
        env = socket_env(SLACK_APP_TOKEN=token, SHUTDOWN_GRACE_SECONDS=str(grace))
        process = start_app(policy_file(tmp_path), **env)
        quiet.wait_connected()
        quiet.stop_answering_close()
        started = time.monotonic()
        code = process.terminate(timeout=30)
        elapsed = time.monotonic() - started
        quiet.reset()  # let the stand-in finish the handshake it was holding
        assert code == 0, process.log()[-2000:]
        assert elapsed < grace, f"took {elapsed:.1f}s:\n{process.log()[-2000:]}"


def test_readiness_reports_a_dropped_socket_mode_connection(
    slack_server: SlackStandIn,
    socket_server: SocketModeStandIn,
    start_app: StartApp,
    tmp_path: Path,
) -> None:
    try:
        with SocketModeStandIn(slack_server) as own_link:  # takes over the app token's URL
            app = start_app(policy_file(tmp_path), **socket_env())
            own_link.wait_connected()
            assert app.http.get("/readyz").status_code == 200
            own_link.stop()
            deadline = time.monotonic() + 10
            while (ready := app.http.get("/readyz")).status_code != 503:
                assert time.monotonic() < deadline, "readiness missed the dropped connection"
                time.sleep(0.1)
            assert "socket_mode" in ready.json()["problems"]
            assert app.http.get("/healthz").status_code == 200
    finally:
        slack_server.socket_urls[APP_TOKEN] = socket_server.link_url
