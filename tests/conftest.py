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
def twochat(
    twochat_server: TwoChatStandIn, request: pytest.FixtureRequest
) -> Iterator[TwoChatStandIn]:
    """The 2Chat stand-in, reset, enforcing the account's limit (80 a minute, or the test's
    ``twochat_limit`` mark); a test fails if the app overran it, unless it expected 429s."""
    twochat_server.reset()
    marker = request.node.get_closest_marker("twochat_limit")
    if marker is not None:
        twochat_server.limit(marker.args[0])
    yield twochat_server
    refused, expected = list(twochat_server.refused), twochat_server.refusals_expected
    twochat_server.reset()
    assert expected or not refused, f"2Chat's rate limit was overrun: 429 to {refused}"


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

# The apps each running test has started itself (innermost last); see ``apps_end_with_their_test``.
_STARTED_IN_TEST: list[list[AppProcess]] = []


@pytest.fixture(autouse=True)
def apps_end_with_their_test() -> Iterator[None]:
    """Apps a test starts itself stop at its end; a module's shared app (started by a
    module fixture, which pytest sets up before this one) lasts the module. Left running,
    an app's reply poller reads the next tests' SMS from the shared 2Chat stand-in."""
    mine: list[AppProcess] = []
    _STARTED_IN_TEST.append(mine)
    yield
    _STARTED_IN_TEST.remove(mine)
    for process in mine:
        process.terminate()


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
        if _STARTED_IN_TEST:
            _STARTED_IN_TEST[-1].append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.terminate()
