"""Faults and bad input: every one ends in a clear outcome, never a crash or a lost send."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.commands import parse_sms_command
from bot.core.phone import parse_number
from bot.errors import InvalidNumber
from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.signing import signed_headers, slash_command_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_command_parser_never_fails_and_keeps_the_message(raw: str) -> None:
    parsed = parse_sms_command(raw)
    assert parsed.kind in ("help", "send", "modal")
    if parsed.kind == "send":
        assert parsed.text and parsed.text == parsed.text.strip()
        assert "," not in parsed.to[-1:] and " " not in parsed.to


@given(st.text(alphabet="+0123456789 -()", max_size=20), st.sampled_from(["GB", "ES", "CA", "DE"]))
@settings(max_examples=300, deadline=None)
def test_number_parsing_gives_stable_e164_or_a_clear_error(text: str, region: str) -> None:
    try:
        number = parse_number(text, region)
    except InvalidNumber as exc:
        assert "number" in str(exc)
        return
    assert number.startswith("+") and number[1:].isdigit()
    assert parse_number(number, "GB") == number  # E.164 is a fixed point


@pytest.fixture(scope="module")
def app(start_app: StartApp) -> AppProcess:
    return start_app()


def send(app: AppProcess, slack: SlackStandIn, text: str, channel: str = CHANNEL) -> None:
    response = app.command(text, "U0ADMIN", channel, slack.response_url())
    assert response.status_code == 200 and not response.content


def test_slack_rate_limit_is_retried_by_slack_sdk(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    slack.fail("chat.postMessage", "ratelimited", status=429, times=2, retry_after=0)
    send(app, slack, "carol through the rate limit")
    reply = slack.wait_for_thread_reply(CHANNEL, timeout=10)
    assert "message_id `SMO" in reply["text"]
    assert len(twochat.sends) == 1


def test_slack_invalid_auth_still_reaches_the_requester(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    slack.fail("chat.postMessage", "invalid_auth", times=1)
    send(app, slack, "carol despite invalid_auth")
    [response] = slack.wait_for_response(1)
    assert "message_id `SMO" in response["text"]
    assert len(twochat.sends) == 1


def test_2chat_connection_refused_is_reported(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    from tests.appproc import free_port

    unreachable = start_app(TWOCHAT_API_URL=f"http://127.0.0.1:{free_port()}")
    send(unreachable, slack, "carol nobody home")
    reply = slack.wait_for_thread_reply(CHANNEL, timeout=15)
    assert ":x: carol" in reply["text"] and "Could not connect to 2Chat" in reply["text"]


def test_2chat_429_is_retried_until_accepted(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.respond(429, {"error": True, "error_message": "slow down"}, times=2)
    send(app, slack, "carol after a 429")
    reply = slack.wait_for_thread_reply(CHANNEL, timeout=15)
    assert "message_id `SMO" in reply["text"]
    assert len(twochat.sends) == 3  # two refused attempts, one accepted; one SMS


@pytest.mark.parametrize(
    "body",
    [
        "payload=not-json",
        "payload=" + json.dumps({"type": "block_actions"}),
        "payload=" + json.dumps({"type": "block_actions", "actions": "x", "user": 5}),
        "payload=" + json.dumps({"type": "view_submission", "view": {"callback_id": 3}}),
        "payload="
        + json.dumps(
            {
                "type": "block_actions",
                "user": {"id": "U0ADMIN"},
                "actions": [{"action_id": "unknown_action", "value": "x"}],
            }
        ),
        "command=%2Fsms&user_id=U0ADMIN",
        "",
    ],
)
def test_malformed_payloads_get_a_4xx_or_polite_answer(app: AppProcess, body: str) -> None:
    response = app.post_signed(body, signed_headers(body))
    assert response.status_code < 500
    assert "Traceback" not in response.text
    assert app.http.get("/healthz").status_code == 200


def test_huge_text_is_refused_politely(app: AppProcess, slack: SlackStandIn) -> None:
    response = app.command("carol " + "x" * 40_000, "U0ADMIN", CHANNEL, slack.response_url())
    assert response.status_code == 200
    assert "the limit is 3" in response.json()["text"]


def test_oversized_body_is_rejected(app: AppProcess, slack: SlackStandIn) -> None:
    body = slash_command_body("carol " + "x" * 400_000, "U0ADMIN", CHANNEL, slack.response_url())
    assert app.post_signed(body).status_code == 413


def test_app_survives_all_of_it_without_tracebacks(app: AppProcess) -> None:
    assert app.http.get("/healthz").json()["ok"] is True
    assert "Traceback" not in app.log()
