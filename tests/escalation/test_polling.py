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
    """At a 60 s poll interval a window shorter than a minute holds one poll at the most: two
    (or an ack read) within it are the fast polling, however slow a busy host makes them."""
    app = start_app(ladder_config(tmp_path, wait="90s", poll="60s"), **SWEEP)
    thread = page(app)
    code = code_in(twochat.wait_for_sends(2)[0]["text"])
    # As often as 2Chat's pace allows: a poll is 3 calls (the conversations, then each
    # number's messages), after the burst one every 0.75 s here; 2 polls take about 3 s.
    twochat.wait_until(lambda: len(polls(twochat)) >= 2, 20, "two polls, not one a minute")
    twochat.inbound(BOB, code)
    board_says(slack, thread, "*Acked* by bob by SMS", timeout=20)  # not 60 s
    settle(0.5)
    before = len(polls(twochat))
    settle(3.0)  # fast polling would make 3 or more
    assert len(polls(twochat)) - before <= 1  # back to once a minute


def polls(twochat: TwoChatStandIn) -> list[str]:
    """The conversations calls so far: one a poll."""
    return twochat.api_calls("GET /open/sms/conversations")
