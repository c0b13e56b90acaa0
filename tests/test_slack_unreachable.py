"""HTTP mode with the Slack Web API unreachable: requests Slack delivers are still answered
in time from what is known, and readiness names the real cause."""

from __future__ import annotations

import time

from tests.appproc import free_port
from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.test_health import wait_for_ready_status

CHANNEL = "C0GENERAL"
SLACK_WAITS = 3.0


def test_requests_are_answered_in_time_while_slack_cannot_be_reached(
    start_app: StartApp, slack: SlackStandIn
) -> None:
    port = free_port()  # nothing listens there: every Web API call is refused
    app = start_app(SLACK_API_URL=f"http://127.0.0.1:{port}/api/")
    for _ in range(2):  # the first request and every later one
        started = time.monotonic()
        response = app.command("help", "U0DEV1", CHANNEL, slack.response_url())
        took = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert "/sms <to> <text>" in response.json()["text"]
        assert took < SLACK_WAITS / 2, f"help took {took:.1f}s"
    started = time.monotonic()
    response = app.command("alice the disk is full", "U0DEV1", CHANNEL, slack.response_url())
    assert response.status_code == 200 and time.monotonic() - started < SLACK_WAITS / 2
    problems = wait_for_ready_status(app, 503).json()["problems"]
    assert problems["slack"] == (
        f"Slack cannot be reached at 127.0.0.1:{port}: Connect call failed ('127.0.0.1', {port})"
    ), problems


def test_who_the_bot_is_is_asked_once_not_before_every_request(
    start_app: StartApp, slack: SlackStandIn
) -> None:
    app = start_app()
    for _ in range(3):
        assert app.command("help", "U0DEV1", CHANNEL, slack.response_url()).status_code == 200
    assert [call.method for call in slack.calls].count("auth.test") <= 1
