"""How many database round trips a send costs, counted where the database sees them.

The app runs in this process against the Slack and 2Chat stand-ins; SQLite reports every
statement it runs (``set_trace_callback``), and each transaction starts with a BEGIN. The
store code is the same for PostgreSQL, so the count holds for both backends.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Components, build
from bot.config.loader import load_policy
from bot.server import Service, close
from bot.settings import load_settings
from bot.store import SqliteStore
from tests.appproc import app_env
from tests.conftest import policy_file
from tests.fakes.signing import signed_headers, slash_command_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"


class Counted:
    """The app in this process, with the transactions its SQLite database starts."""

    def __init__(self, parts: Components, client: TestClient) -> None:
        self.parts = parts
        self.client = client
        self.begins = 0
        store = parts.store
        assert isinstance(store, SqliteStore)
        conn: sqlite3.Connection = store._conn
        conn.set_trace_callback(self._seen)

    def _seen(self, statement: str) -> None:
        if statement.startswith("BEGIN"):
            self.begins += 1

    async def command(self, text: str, slack: SlackStandIn) -> None:
        body = slash_command_body(text, "U0DEV1", CHANNEL, slack.response_url())
        response = await self.client.post("/slack/events", data=body, headers=signed_headers(body))
        assert response.status == 200, await response.text()

    async def settle(self) -> None:
        """Until every send started in the background has ended."""
        assert await self.parts.runner.drain(10)


@pytest.fixture
async def app(
    tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> AsyncIterator[Counted]:
    settings = load_settings(app_env(slack.api_url, twochat.url, policy_file(tmp_path), tmp_path))
    parts = build(settings, load_policy(settings.config_path))
    client = TestClient(TestServer(Service(parts).web_app()))
    await client.start_server()
    counted = Counted(parts, client)
    await counted.command("help", slack)  # Bolt's first request asks Slack who it is
    await counted.settle()
    try:
        yield counted
    finally:
        await client.close()
        await close(parts)


async def test_a_single_recipient_send_takes_three_round_trips(
    app: Counted, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    before = app.begins
    await app.command("alice three round trips", slack)
    await app.settle()
    [sent] = twochat.sends
    assert sent["text"] == "three round trips"
    reply = slack.wait_for_thread_reply(CHANNEL)
    assert ":white_check_mark:" in reply["text"]
    # record (with its claims, limits and lease), claim (with the thread), finish (with
    # the request's completion and the lease's release)
    assert app.begins - before == 3


async def test_a_refused_send_takes_one_round_trip_and_records_nothing(
    app: Counted, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    store = app.parts.store
    await asyncio.to_thread(store.opt_out, "+447700900123", "STOP")
    before = app.begins
    await app.command("alice you opted out", slack)
    await app.settle()
    assert app.begins - before == 1
    assert twochat.sends == []
    assert await asyncio.to_thread(store.recent_requests, "U0DEV1") == []
