"""``GET /metrics``: Prometheus counters after real sends, refusals and Slack errors."""

from __future__ import annotations

import re

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if found == labels:
                return float(match.group(3))
    return 0.0


def scrape(app: AppProcess) -> str:
    response = app.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_sends_refusals_and_slack_errors_are_counted(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app()
    app.command("db-oncall disk full", "U0DEV1", CHANNEL, slack.response_url())
    twochat.wait_for_sends(2)
    slack.wait_for_thread_reply(CHANNEL)
    twochat.respond(402, {"error": True, "error_message": "no credits"}, times=1)
    app.command("alice second", "U0DEV1", CHANNEL, slack.response_url())
    slack.wait_until(
        lambda: len([p for p in slack.posts(CHANNEL) if p.get("thread_ts")]) >= 2, 5, "2 replies"
    )
    slack.fail("chat.postMessage", "channel_not_found")
    app.command("alice third", "U0DEV1", CHANNEL, slack.response_url())
    twochat.wait_for_sends(3)

    def counted() -> str | None:
        text = scrape(app)
        return text if sample(text, "sms_bridge_sms_total", result="sent") == 3 else None

    text = slack.wait_until(counted, 5, "3 sent SMS in /metrics")
    assert sample(text, "sms_bridge_sms_total", result="failed") == 1
    assert sample(text, "sms_bridge_sms_failures_total", result="failed", reason="http_402") == 1
    assert sample(text, "sms_bridge_twochat_requests_total", kind="send", status="202") == 3
    assert sample(text, "sms_bridge_twochat_requests_total", kind="send", status="402") == 1
    assert sample(text, "sms_bridge_twochat_latency_seconds_count", kind="send") == 4
    assert (
        sample(
            text,
            "sms_bridge_slack_api_errors_total",
            method="chat.postMessage",
            error="channel_not_found",
        )
        >= 1
    )
    assert sample(text, "sms_bridge_approvals_pending") == 0
    assert "sms_bridge_pacer_waiting_sends" in text
