"""Shared fixtures: the local Slack and 2Chat stand-ins, and the app run for real."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.appproc import TWOCHAT_KEY, AppProcess, app_env
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = ROOT / "config" / "bridge.yaml"


@pytest.fixture(scope="session")
def slack_server() -> Iterator[SlackStandIn]:
    with SlackStandIn() as server:
        yield server


@pytest.fixture(scope="session")
def twochat_server() -> Iterator[TwoChatStandIn]:
    with TwoChatStandIn(api_key=TWOCHAT_KEY) as server:
        yield server


@pytest.fixture
def slack(slack_server: SlackStandIn) -> SlackStandIn:
    slack_server.reset()
    return slack_server


@pytest.fixture
def twochat(twochat_server: TwoChatStandIn) -> Iterator[TwoChatStandIn]:
    twochat_server.reset()
    yield twochat_server
    twochat_server.reset()


StartApp = Callable[..., AppProcess]


@pytest.fixture(scope="module")
def start_app(
    slack_server: SlackStandIn,
    twochat_server: TwoChatStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StartApp]:
    """Start app processes (python -m bot) for a test module; all are stopped at its end."""
    started: list[AppProcess] = []

    def start(config: Path = SHIPPED_CONFIG, **env: str) -> AppProcess:
        tmp = tmp_path_factory.mktemp("app")
        process = AppProcess(
            app_env(slack_server.api_url, twochat_server.url, config, tmp, **env), tmp / "app.log"
        )
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.terminate()
