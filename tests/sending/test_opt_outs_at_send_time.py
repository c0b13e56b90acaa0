"""A text that waited (for an approver) is checked against opt-outs again when it goes:
whoever replied STOP meanwhile gets nothing, and the thread says why."""

from __future__ import annotations

import asyncio

from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.inprocess import InProcessApp

ALICE = "+447700900123"


async def test_an_approved_text_skips_whoever_opted_out_while_it_waited(
    in_process: InProcessApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    store, workflow = in_process.parts.store, in_process.parts.workflow
    await in_process.command("alice please call me", slack, user="U0INTERN")
    [request] = await asyncio.to_thread(store.recent_requests, "U0INTERN")
    assert request.state == "pending_approval"
    await asyncio.to_thread(store.opt_out, ALICE, "replied STOP")
    assert await workflow.decide_request(request.id, "U0ADMIN", approve=True) is None
    await in_process.settle()
    assert twochat.sends == []
    [send] = await asyncio.to_thread(store.sends, request.id)
    assert send.state == "failed"
    assert send.error is not None and "opted out" in send.error
