"""The HTTP endpoint classifies Slack's form posts by their fields, not by the words in them.

Bolt on its own treats any form body containing the substring "payload" as an interactive
payload and answers 404 "unhandled request"; these requests must reach ``/sms`` like any other.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot.slack.transport.http import SlackPost, bolt_request, malformed_event, read_post
from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.signing import slash_command_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
FORM = "application/x-www-form-urlencoded"


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


def test_a_post_is_read_by_its_fields_not_by_the_words_in_them() -> None:
    command = read_post(urlencode({"command": "/sms", "text": "the payload is ready"}))
    assert (command.kind, command.body) == (
        "command",
        {"command": "/sms", "text": "the payload is ready"},
    )
    interactive = read_post(urlencode({"payload": json.dumps({"type": "block_actions"})}))
    assert (interactive.kind, interactive.body) == ("interaction", {"type": "block_actions"})
    event = read_post(json.dumps({"type": "event_callback", "event": {"type": "message"}}))
    assert event.kind == "event"
    assert read_post(urlencode({"payload": "{not json"})) == SlackPost(
        urlencode({"payload": "{not json"}), "other", None
    )


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (urlencode({"payload": "[1, 2]"}), "application/x-www-form-urlencoded"),
        (urlencode({"payload": "{not json"}), "application/x-www-form-urlencoded"),
        ("command=%2Fsms", "application/json"),
    ],
)
def test_a_body_bolt_could_not_use_is_refused(raw: str, content_type: str) -> None:
    with pytest.raises(ValueError):
        bolt_request(read_post(raw), "", {"content-type": content_type})


def test_bolt_request_body_and_context_come_from_our_parse() -> None:
    raw = urlencode({"command": "/sms", "text": "payload", "user_id": "U1", "team_id": "T1"})
    request = bolt_request(read_post(raw), "", {"content-type": FORM})
    assert request.body["text"] == "payload"
    assert request.raw_body == raw  # untouched, so the signature still verifies
    assert request.context.user_id == "U1"


def test_an_event_reaches_bolt_as_the_json_it_is() -> None:
    raw = json.dumps({"type": "event_callback", "team_id": "T1", "event": {"type": "app_mention"}})
    request = bolt_request(read_post(raw), "", {"content-type": "application/json"})
    assert request.body == json.loads(raw)
    assert request.raw_body == raw
    assert request.context.team_id == "T1"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{not json", "the body is not JSON"),
        ('{"type": "event_callback", "event": []}', "event is not an object"),
        ('{"type": "event_callback", "event": {"type": 1}}', "event.type is not a string"),
        ('{"type": "url_verification"}', None),
        ("command=%2Fsms", None),
    ],
)
def test_a_malformed_event_is_named(raw: str, problem: str | None) -> None:
    assert malformed_event(read_post(raw)) == problem
