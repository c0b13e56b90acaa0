"""TWOCHAT_DRY_RUN=1: everything is recorded and reported as usual, nothing reaches 2Chat."""

from __future__ import annotations

import pytest

from bot.errors import SettingsError
from bot.settings import load_settings
from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn


def test_dry_run_reports_every_recipient_and_calls_no_send(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app(TWOCHAT_DRY_RUN="1")
    response = app.command("db-oncall disk full", "U0DEV1", "C0GENERAL", slack.response_url())
    assert response.status_code == 200 and not response.content
    reply = slack.wait_for_thread_reply("C0GENERAL")["text"]
    assert reply.count("DRYRUN-not-sent-") == 2
    assert "alice" in reply and "bob" in reply
    assert not [call for call in twochat.requests if call.startswith("POST")]
    assert twochat.sends == []


def test_dry_run_value_must_be_0_or_1() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "TWOCHAT_API_KEY": "k"}
    with pytest.raises(SettingsError) as raised:
        load_settings({**env, "TWOCHAT_DRY_RUN": "yes"})
    assert "TWOCHAT_DRY_RUN must be one of 0, 1" in raised.value.problems
    assert load_settings({**env, "TWOCHAT_DRY_RUN": "1"}).twochat_dry_run
