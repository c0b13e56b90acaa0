"""How many database round trips a send costs, counted where the database sees them.

The app runs in this process against the Slack and 2Chat stand-ins; SQLite reports every
statement it runs (``set_trace_callback``), and each transaction starts with a BEGIN. The
store code is the same for PostgreSQL, so the count holds for both backends.
"""

from __future__ import annotations

import asyncio

from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.inprocess import CHANNEL, InProcessApp


async def test_a_single_recipient_send_takes_four_round_trips(
    in_process: InProcessApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    before = in_process.begins
    await in_process.command("alice three round trips", slack)
    await in_process.settle()
    [sent] = twochat.sends
    assert sent["text"] == "three round trips"
    reply = slack.wait_for_thread_reply(CHANNEL)
    assert ":white_check_mark:" in reply["text"]
    # record (with its claims, limits and lease), claim (with the thread), finish (with
    # the request's completion, its outcome owed to the thread), the outcome landed (with
    # the lease's release: until then a crash leaves the outcome to the sweeper)
    assert in_process.begins - before == 4


async def test_a_refused_send_takes_one_round_trip_and_records_nothing(
    in_process: InProcessApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    store = in_process.parts.store
    await asyncio.to_thread(store.opt_out, "+447700900123", "STOP")
    before = in_process.begins
    await in_process.command("alice you opted out", slack)
    await in_process.settle()
    assert in_process.begins - before == 1
    assert twochat.sends == []
    assert await asyncio.to_thread(store.recent_requests, "U0DEV1") == []
