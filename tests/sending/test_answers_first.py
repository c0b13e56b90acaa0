"""Slack's answers go first: a send waits while another Slack request is being answered,
so a burst of ``/sms`` is acked before the sends it started take the CPU."""

from __future__ import annotations

import asyncio

from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.inprocess import InProcessApp


async def test_a_send_starts_once_no_slack_request_is_being_answered(
    in_process: InProcessApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    runner = in_process.parts.runner
    runner.answers_first_for = 60
    with runner.answering():  # another Slack request, still being answered
        await in_process.command("alice after the answers", slack)
        await asyncio.sleep(0.3)
        assert twochat.sends == []
    await in_process.settle()
    [sent] = twochat.sends
    assert sent["text"] == "after the answers"
