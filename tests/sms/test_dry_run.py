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


@pytest.mark.parametrize(
    ("value", "dry_run"),
    [
        *[("1", True), ("true", True), ("Yes", True), ("on", True)],
        *[("0", False), ("FALSE", False), ("no", False), ("off", False), ("", False)],
    ],
)
def test_dry_run_takes_any_usual_yes_or_no(value: str, dry_run: bool) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "TWOCHAT_API_KEY": "k"}
    assert load_settings({**env, "TWOCHAT_DRY_RUN": value}).twochat_dry_run is dry_run


def test_dry_run_refuses_anything_else() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "TWOCHAT_API_KEY": "k"}
    with pytest.raises(SettingsError) as raised:
        load_settings({**env, "TWOCHAT_DRY_RUN": "maybe"})
    assert raised.value.problems == [
        "TWOCHAT_DRY_RUN must be true or false (or yes/no, on/off, 1/0)"
    ]
