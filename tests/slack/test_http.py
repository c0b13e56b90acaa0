"""The HTTP endpoint classifies Slack's form posts by their fields, not by the words in them.

Bolt on its own treats any form body containing the substring "payload" as an interactive
payload and answers 404 "unhandled request"; these requests must reach ``/sms`` like any other.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot.slack.transport.http import bolt_request, form_body
from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.signing import slash_command_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"


@pytest.fixture(scope="module")
def app(start_app: StartApp) -> AppProcess:
    return start_app()


@pytest.mark.parametrize(
    ("text", "extra"),
    [
        ("alice the payload is ready", {}),
        ("alice deploy done", {"channel_name": "payload-eng"}),
        ("alice deploy done", {"user_name": "payload.person"}),
        ("alice deploy done", {"team_domain": "payloads-inc"}),
        ("alice payload={}", {}),
    ],
)
def test_sms_with_the_word_payload_is_sent(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    text: str,
    extra: dict[str, str],
) -> None:
    body = slash_command_body(text, "U0DEV1", CHANNEL, slack.response_url(), **extra)
    response = app.post_signed(body)
    assert response.status_code == 200, response.text
    assert not response.content or response.json().get("text", "") == ""
    [sent] = twochat.wait_for_sends(1)
    assert sent["to_number"] == "+447700900123"
    assert sent["text"] == text.split(" ", 1)[1]


def test_form_body_keeps_command_fields_and_decodes_real_payloads() -> None:
    command = urlencode({"command": "/sms", "text": "the payload is ready"})
    assert form_body(command) == {"command": "/sms", "text": "the payload is ready"}
    interactive = urlencode({"payload": json.dumps({"type": "block_actions"})})
    assert form_body(interactive) == {"type": "block_actions"}
    with pytest.raises(ValueError):
        form_body(urlencode({"payload": "[1, 2]"}))


def test_bolt_request_body_and_context_come_from_our_parse() -> None:
    raw = urlencode({"command": "/sms", "text": "payload", "user_id": "U1", "team_id": "T1"})
    request = bolt_request(raw, "", {"content-type": "application/x-www-form-urlencoded"})
    assert request.body["text"] == "payload"
    assert request.raw_body == raw  # untouched, so the signature still verifies
    assert request.context.user_id == "U1"
