"""A 2Chat answer that does not say what happened to an SMS is "outcome unknown" (shown with a
Retry button and never retried by itself), not a failure: 2Chat may have queued it."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
_texts = itertools.count(1)


def ask(app: AppProcess, slack: SlackStandIn) -> None:
    """Run /sms to alice with a text no other test sends (a repeated body is a replay)."""
    text = f"alice is the db up? ({next(_texts)})"
    response = app.command(text, "U0ADMIN", CHANNEL, slack.response_url())
    assert response.status_code == 200 and not response.content


@pytest.fixture(scope="module")
def app(start_app: StartApp) -> AppProcess:
    return start_app()


def blocks_of(reply: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = reply.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "shown"),
    [
        (202, {"success": True}, "application/json", "returned no message id"),
        (200, {"success": True, "message_id": ""}, "application/json", "returned no message id"),
        (202, "queued", "text/plain", "HTTP 202 with a non-JSON body"),
        (202, "[1, 2]", "application/json", "unexpected JSON body"),
        (500, {"message": "boom"}, "application/json", "2Chat server error (HTTP 500): boom"),
        (500, "<html><body>Oops</body></html>", "text/html", "non-JSON body"),
        (502, {"message": "bad gateway"}, "application/json", "HTTP 502"),
    ],
)
def test_an_uncertain_answer_is_unknown_with_a_retry_button(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    status: int,
    body: object,
    content_type: str,
    shown: str,
) -> None:
    twochat.respond(
        status, body if isinstance(body, dict) else str(body), content_type=content_type
    )
    ask(app, slack)
    reply = slack.wait_for_thread_reply(CHANNEL)
    assert shown in reply["text"]
    retry = [b for b in blocks_of(reply) if b.get("block_id") == "retry"]
    assert retry and retry[0]["elements"][0]["action_id"] == "send_retry"
    assert len(twochat.sends) == 1  # never re-sent by itself


@pytest.mark.parametrize(
    ("status", "body"),
    [(402, {"error": True, "error_message": "no credits"}), (202, {"success": False})],
)
def test_a_definite_refusal_stays_a_failure(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, status: int, body: object
) -> None:
    twochat.respond(status, body if isinstance(body, dict) else str(body))
    ask(app, slack)
    reply = slack.wait_for_thread_reply(CHANNEL)
    assert "may or may not" not in reply["text"]
    assert not [b for b in blocks_of(reply) if b.get("block_id") == "retry"]
    assert len(twochat.sends) == 1
