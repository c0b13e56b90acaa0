"""Replies are polled at ``page_poll_interval`` only while an escalating page awaits its
ack. In a module of its own: other modules' apps, still running, would poll the same 2Chat
stand-in and blur the count of calls."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import StartApp
from tests.escalation.ladder_app import (
    BOB,
    SWEEP,
    board_says,
    code_in,
    ladder_config,
    page,
    settle,
)
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn


def test_replies_are_polled_fast_only_while_a_page_awaits_its_ack(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(ladder_config(tmp_path, wait="30s", poll="10s"), **SWEEP)
    thread = page(app)
    code = code_in(twochat.wait_for_sends(2)[0]["text"])
    settle(3.0)
    open_polls = len(twochat.api_calls("GET /open/sms/conversations"))
    # As often as 2Chat's pace allows, not every 10 s: a poll is 3 calls (the conversations,
    # then each number's messages), after the burst one every 0.75 s here, and the burst
    # also holds the start's read of the limit and the page's 2 sends.
    assert open_polls >= 2
    twochat.inbound(BOB, code)
    board_says(slack, thread, "*Acked* by bob by SMS", timeout=5)  # not 10 s
    settle(0.5)
    before = len(twochat.api_calls("GET /open/sms/conversations"))
    settle(1.5)
    assert len(twochat.api_calls("GET /open/sms/conversations")) - before <= 1  # back to 10 s
