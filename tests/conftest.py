"""Shared fixtures: the local Slack and 2Chat stand-ins, and the app run for real."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.appproc import TWOCHAT_KEY, AppProcess, app_env
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.postgres_server import POSTGRES

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = ROOT / "config" / "bridge.yaml"
# The ``app`` and ``postgres`` markers (``make test-fast`` runs the tests with neither).
pytest_plugins = ["tests.needs"]


def policy_file(tmp: Path, replacements: dict[str, str] | None = None) -> Path:
    """The shipped policy with rate limits high enough for a test module's many sends,
    plus text replacements (old -> new)."""
    text = SHIPPED_CONFIG.read_text()
    text = text.replace("per_sender_per_hour: 30", "per_sender_per_hour: 10000")
    text = text.replace("per_recipient_per_hour: 10", "per_recipient_per_hour: 10000")
    for old, new in (replacements or {}).items():
        text = text.replace(old, new)
    path = tmp / "bridge.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def slack_server() -> Iterator[SlackStandIn]:
    with SlackStandIn() as server:
        yield server


@pytest.fixture(scope="session")
def twochat_server() -> Iterator[TwoChatStandIn]:
    with TwoChatStandIn(api_key=TWOCHAT_KEY) as server:
        yield server


@pytest.fixture
def slack(slack_server: SlackStandIn) -> Iterator[SlackStandIn]:
    """The Slack stand-in, reset; a test fails if the app exceeded any of Slack's limits."""
    slack_server.reset()
    yield slack_server
    slack_server.assert_within_limits()


@pytest.fixture
def twochat(twochat_server: TwoChatStandIn) -> Iterator[TwoChatStandIn]:
    twochat_server.reset()
    yield twochat_server
    twochat_server.reset()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the real local Postgres (the test fails if it is not running)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


StartApp = Callable[..., AppProcess]


@pytest.fixture(scope="module")
def start_app(
    slack_server: SlackStandIn,
    twochat_server: TwoChatStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StartApp]:
    """Start app processes (python -m bot) for a test module; all are stopped at its end."""
    started: list[AppProcess] = []

    def start(config: Path | None = None, **env: str) -> AppProcess:
        tmp = tmp_path_factory.mktemp("app")
        config = config or policy_file(tmp)
        process = AppProcess(
            app_env(slack_server.api_url, twochat_server.url, config, tmp, **env), tmp / "app.log"
        )
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.terminate()
