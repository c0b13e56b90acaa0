"""Slack-linked numbers, links and refused destinations through the real app: ``/sms`` and
an auto-paging alert, signed as Slack signs them, against the Slack and 2Chat stand-ins."""

from __future__ import annotations

import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
INCIDENT = "C0INCIDENT"
DASHBOARD = "CRITICAL: see <https://grafana.example/d/1|dashboard>"
AS_SMS = "CRITICAL: see dashboard (https://grafana.example/d/1)"


@pytest.fixture(scope="module")
def app(start_app: StartApp) -> AppProcess:
    return start_app()


def sms(app: AppProcess, slack: SlackStandIn, text: str, user: str = "U0ADMIN") -> str:
    """Run /sms and return the ack's text (empty for an accepted send)."""
    response = app.command(text, user, CHANNEL, slack.response_url())
    assert response.status_code == 200, response.text
    return response.json()["text"] if response.content else ""


def test_a_slack_linked_number_is_texted_at_its_target(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sms(app, slack, "<tel:+447700900999|+44 7700 900999> hello") == ""
    [sent] = twochat.wait_for_sends(1)
    assert sent["to_number"] == "+447700900999"
    assert sent["text"] == "hello"


def test_a_link_is_texted_as_its_label_then_its_url(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sms(app, slack, f"alice {DASHBOARD}") == ""
    [sent] = twochat.wait_for_sends(1)
    assert sent["text"] == AS_SMS


LONG_LABEL = "the primary database dashboard for every cluster we run in the EU"


def test_a_link_whose_label_would_break_the_segment_limit_is_sent_as_its_url(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    words = "x" * 420  # with the label spelled out the text needs 4 segments; the limit is 3
    assert sms(app, slack, f"alice {words} <https://grafana.example/d/1|{LONG_LABEL}>") == ""
    [sent] = twochat.wait_for_sends(1)
    assert sent["text"] == f"{words} https://grafana.example/d/1"


def test_an_alert_with_a_link_pages_with_its_url(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    ts = "1800000001.000001"
    event = {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B0ALERTS",
        "text": "",
        "attachments": [{"fallback": DASHBOARD, "text": DASHBOARD}],
        "ts": ts,
        "channel": INCIDENT,
        "event_ts": ts,
        "channel_type": "channel",
    }
    assert app.event(event, "EvLINKS0001").status_code == 200
    sends = twochat.wait_for_sends(2)
    assert {send["text"] for send in sends} == {AS_SMS}


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("+17875550123 hi", "A2P messaging to Puerto Rico numbers"),
        ("+16716323333 hi", "A2P messaging to Guam numbers"),
        ("+18005550199 hi", "toll-free numbers (+1 800"),
        ("+447700900123;ext=5 hi", "has an extension (5)"),
        ("<tel:+447700900123;ext=5|+44 7700 900123 ext. 5> hi", "has an extension (5)"),
    ],
)
def test_numbers_that_cannot_get_a_text_are_refused_privately(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    command: str,
    reason: str,
) -> None:
    text = sms(app, slack, command)
    assert text.startswith(":no_entry: Not sent:")
    assert reason in text
    assert twochat.sends == []
    assert slack.posts(CHANNEL) == []
