"""The app run in this process against the Slack and 2Chat stand-ins, for tests that look
inside it while it serves signed requests (its store, its task runner)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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


class InProcessApp:
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

    async def command(self, text: str, slack: SlackStandIn, user: str = "U0DEV1") -> None:
        body = slash_command_body(text, user, CHANNEL, slack.response_url())
        response = await self.client.post("/slack/events", data=body, headers=signed_headers(body))
        assert response.status == 200, await response.text()

    async def settle(self) -> None:
        """Until every send started in the background has ended."""
        assert await self.parts.runner.drain(10)


@asynccontextmanager
async def in_process_app(
    tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> AsyncIterator[InProcessApp]:
    settings = load_settings(app_env(slack.api_url, twochat.url, policy_file(tmp_path), tmp_path))
    parts = build(settings, load_policy(settings.config_path))
    client = TestClient(TestServer(Service(parts).web_app()))
    await client.start_server()
    counted = InProcessApp(parts, client)
    await counted.command("help", slack)  # Bolt's first request asks Slack who it is
    await counted.settle()
    try:
        yield counted
    finally:
        await client.close()
        await close(parts)
