"""``/sms`` end to end: the app runs as ``python -m bot`` against the Slack and 2Chat stand-ins,
and every request is signed exactly as Slack signs it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.appproc import TWOCHAT_KEY, AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.signing import SIGNING_SECRET, signed_headers, slash_command_body
from tests.fakes.slack_server import BOT_TOKEN, SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"


@pytest.fixture(scope="module")
def app(start_app: StartApp) -> AppProcess:
    return start_app()


def sms(
    app: AppProcess, slack: SlackStandIn, text: str, user: str = "U0DEV1", channel: str = CHANNEL
) -> str:
    """Run /sms and return the ack's text (empty for an accepted send)."""
    response = app.command(text, user, channel, slack.response_url())
    assert response.status_code == 200, response.text
    return response.json()["text"] if response.content else ""


def test_send_posts_request_then_message_id_in_its_thread(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sms(app, slack, "alice Database is down, please look") == ""
    [sent] = twochat.wait_for_sends(1)
    assert sent == {
        "from_number": "+17137157533",
        "to_number": "+447700900123",
        "text": "Database is down, please look",
    }
    reply = slack.wait_for_thread_reply(CHANNEL)
    [request] = [post for post in slack.posts(CHANNEL) if not post.get("thread_ts")]
    assert reply["thread_ts"] == request["_ts"]
    assert "<@U0DEV1>" in request["text"] and "alice (+447700900123)" in request["text"]
    assert "1 segment, GSM-7" in request["text"]
    assert "Database is down, please look" in request["text"]
    assert ":white_check_mark: alice (+447700900123)" in reply["text"]
    assert "message_id `SMO" in reply["text"]


def test_group_send_makes_one_2chat_call_per_member(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    sms(app, slack, "db-oncall disk full on db-1")
    sends = twochat.wait_for_sends(2)
    assert sorted(send["to_number"] for send in sends) == ["+447700900123", "+447700900456"]
    reply = slack.wait_for_thread_reply(CHANNEL)["text"]
    assert reply.count(":white_check_mark:") == 2
    assert "alice" in reply and "bob" in reply


def test_help_is_private_and_lists_what_the_user_may_reach(
    app: AppProcess, slack: SlackStandIn
) -> None:
    text = sms(app, slack, "help")
    assert "/sms <to> <text>" in text
    assert "You may text: db-oncall, carol, +447700900*." in text
    assert "You may send from: main." in text
    assert slack.posts() == []


@pytest.mark.parametrize(
    ("user", "command", "reason"),
    [
        ("U0STRANGER", "alice hi", "you are not allowed to send SMS from Slack"),
        ("U0ADMIN", "+12125550123 hi", "2Chat does not support A2P messaging to US numbers"),
        ("U0ADMIN", "nobody hi", "'nobody' is not a contact, a group or a phone number"),
        ("U0ADMIN", "+4412 hi", "'+4412' is not a valid phone number"),
        ("U0DEV1", "+442079460958 hi", "you may not text +442079460958"),
        ("U0DEV1", "from:uk alice hi", "you may not send from 'uk'"),
        ("U0ADMIN", "alice " + "x" * 460, "the message is 4 SMS segments (GSM-7); the limit is 3"),
    ],
)
def test_refusals_are_private_and_nothing_reaches_2chat(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    user: str,
    command: str,
    reason: str,
) -> None:
    text = sms(app, slack, command, user=user)
    assert reason in text
    assert text.startswith(":no_entry: Not sent:")
    # A valid send afterwards is the only one 2Chat and the channel ever see.
    sms(app, slack, "carol marker", user="U0ADMIN")
    slack.wait_for_thread_reply(CHANNEL)
    assert [send["text"] for send in twochat.sends] == ["marker"]
    assert len(slack.posts(CHANNEL)) == 2


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (
            400,
            {"error": True, "error_message": "bad json"},
            "2Chat rejected the request as bad JSON",
        ),
        (401, {"error": True, "error_message": "Invalid API key"}, "2Chat rejected the API key"),
        (402, {"success": False, "error_message": "no credits"}, "no credits left"),
        (500, {"message": "boom"}, "500"),
        (500, "<html><body>Internal Server Error</body></html>", "non-JSON"),
    ],
)
def test_2chat_errors_are_reported_in_the_thread(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    status: int,
    body: object,
    shown: str,
) -> None:
    content_type = "text/html" if isinstance(body, str) else "application/json"
    twochat.respond(status, body, content_type=content_type)
    sms(app, slack, "alice hello")
    reply = slack.wait_for_thread_reply(CHANNEL)["text"]
    assert reply.startswith(":x: alice (+447700900123):")
    assert shown in reply
    assert "<html>" not in reply


def test_2chat_timeout_is_reported_as_unknown_outcome(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.hang()
    sms(app, slack, "alice hello")
    reply = slack.wait_for_thread_reply(CHANNEL, timeout=10)["text"]
    assert ":x: alice" in reply
    assert "may or may not have been sent" in reply


def test_partial_failure_is_visible_at_a_glance(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.respond(402, {"error": True, "error_message": "no credits"}, times=1)
    sms(app, slack, "db-oncall hello")
    reply = slack.wait_for_thread_reply(CHANNEL)["text"]
    assert reply.startswith("*1 of 2 failed*")
    assert reply.count(":white_check_mark:") == 1 and reply.count(":x:") == 1


def test_ack_does_not_wait_for_2chat(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.set_delay(0.8)
    started = time.monotonic()
    assert sms(app, slack, "alice quick ack") == ""
    assert time.monotonic() - started < 0.5
    assert slack.thread_replies(CHANNEL) == []  # 2Chat has not answered yet
    assert ":white_check_mark:" in slack.wait_for_thread_reply(CHANNEL)["text"]


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found"])
def test_outcome_reaches_requester_privately_when_bot_cannot_post(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, error: str
) -> None:
    slack.channel_errors["C0PRIVATE"] = error
    sms(app, slack, "alice from a private channel", channel="C0PRIVATE")
    [response] = slack.wait_for_response(1)
    assert response["response_type"] == "ephemeral"
    assert "alice (+447700900123)" in response["text"]
    assert "message_id `SMO" in response["text"]
    assert len(twochat.sends) == 1


def test_outcome_falls_back_to_dm_when_response_url_is_not_slack(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    slack.channel_errors["C0PRIVATE"] = "not_in_channel"
    body = slash_command_body("alice hi", "U0DEV1", "C0PRIVATE", "https://evil.example/steal")
    assert app.post_signed(body).status_code == 200
    [dm] = slack.wait_for_posts(1, channel="U0DEV1")
    assert "message_id `SMO" in dm["text"]
    assert slack.responses == []


def test_forged_and_stale_signatures_are_rejected(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    body = slash_command_body("alice forged", "U0ADMIN", CHANNEL, slack.response_url())
    forged = app.post_signed(body, signed_headers(body, secret="not-the-secret"))
    stale = app.post_signed(body, signed_headers(body, timestamp=int(time.time()) - 600))
    unsigned = app.http.post("/slack/events", content=body)
    tampered_headers = signed_headers(body)
    tampered = app.post_signed(body.replace("forged", "tampered"), tampered_headers)
    assert [r.status_code for r in (forged, stale, unsigned, tampered)] == [401, 401, 401, 401]
    sms(app, slack, "carol marker", user="U0ADMIN")
    slack.wait_for_thread_reply(CHANNEL)
    assert [send["text"] for send in twochat.sends] == ["marker"]


def test_malformed_payload_gets_a_polite_answer(app: AppProcess, slack: SlackStandIn) -> None:
    body = "command=%2Fsms&text=alice+hi&channel_id=C0GENERAL"
    response = app.post_signed(body)
    assert response.status_code == 200
    assert "no valid user_id" in response.json()["text"]


def test_healthz(app: AppProcess) -> None:
    assert app.http.get("/healthz").json()["ok"] is True


def test_secrets_never_reach_logs_or_slack(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.respond(401, {"error": True, "error_message": f"Invalid API key {TWOCHAT_KEY}"})
    sms(app, slack, "alice hello")
    reply = slack.wait_for_thread_reply(CHANNEL)["text"]
    assert "2Chat rejected the API key" in reply
    everything = app.log() + slack.all_text()
    for secret in (TWOCHAT_KEY, BOT_TOKEN, SIGNING_SECRET):
        assert secret not in everything
    assert "to +44•••••0123 failed" in app.log()  # numbers are masked in logs
    assert "+447700900123" not in app.log()


def test_mask_numbers_hides_numbers_in_channel_posts(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    masked = start_app(policy_file(tmp_path, {"mask_numbers: false": "mask_numbers: true"}))
    sms(masked, slack, "alice,+447700900999 hello", user="U0ADMIN")
    reply = slack.wait_for_thread_reply(CHANNEL)
    everything_posted = slack.all_text()
    assert "+447700900123" not in everything_posted
    assert "+447700900999" not in everything_posted
    assert "alice (+44•••••0123)" in reply["text"]
    assert "+44•••••0999" in reply["text"]


def test_sigterm_lets_in_flight_sends_finish(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    draining = start_app()
    twochat.set_delay(0.7)
    sms(draining, slack, "alice finish me")
    twochat.wait_for_sends(1)
    assert draining.terminate() == 0
    assert ":white_check_mark:" in slack.wait_for_thread_reply(CHANNEL, timeout=1)["text"]
    assert "stopped" in draining.log()


def test_pace_is_learned_from_2chat_when_not_configured(app: AppProcess) -> None:
    assert "pacing 2Chat calls under 80 per minute" in app.wait_for_log("pacing 2Chat")
