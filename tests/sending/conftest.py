"""The app run in this process, for the send path's tests that look inside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.inprocess import InProcessApp, in_process_app


@pytest.fixture
async def in_process(
    tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> AsyncIterator[InProcessApp]:
    async with in_process_app(tmp_path, slack, twochat) as app:
        yield app
