"""A reload applies every setting it reports as reloaded: turning reply polling on and
off, and a new 2Chat pace, take effect without a restart."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
ALICE = "+447700900123"
LIMIT = "per_recipient_per_hour: 10000"
REPLIES = "\nreplies:\n  poll_interval: 0.2s"


def reload(app: AppProcess, count: int) -> None:
    """SIGHUP, then wait for the ``count``-th "policy reloaded"."""
    app.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while app.log().count("policy reloaded") < count:
        assert time.monotonic() < deadline, f"reload {count} not logged"
        time.sleep(0.02)


def test_a_reload_turns_reply_polling_on_and_off(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    config = policy_file(tmp_path)
    app = start_app(config=config)
    response = app.command("alice hello", "U0ADMIN", CHANNEL, slack.response_url())
    assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(1)
    config.write_text(config.read_text().replace(LIMIT, LIMIT + REPLIES))
    reload(app, 1)
    twochat.inbound(ALICE, "STOP")
    slack.wait_until(
        lambda: "alice has opted out" in slack.all_text(), 5, "alice's STOP read after the reload"
    )
    config.write_text(config.read_text().replace(REPLIES, ""))
    reload(app, 2)
    app.wait_for_log("SMS replies no longer relayed")
    polls = len(twochat.api_calls("GET /open/sms/conversations"))
    time.sleep(1)  # five intervals of the old pace
    assert len(twochat.api_calls("GET /open/sms/conversations")) == polls


def test_a_reload_applies_a_lower_2chat_pace_at_once(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    config = policy_file(tmp_path, {LIMIT: f"{LIMIT}\n  requests_per_minute: 6000"})
    app = start_app(config=config)
    config.write_text(
        config.read_text().replace("requests_per_minute: 6000", "requests_per_minute: 6")
    )
    reload(app, 1)
    for n in range(10):
        response = app.command(f"carol text {n}", "U0ADMIN", CHANNEL, slack.response_url())
        assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(5)
    time.sleep(2)  # at 6000 a minute all ten would be out by now
    assert len(twochat.sends) <= 6
