"""Socket Mode when Slack cannot be reached: the app keeps serving its probes, backs off
with one log line per attempt, lets ``/readyz`` say why, connects once Slack is back, and
stops at once on SIGTERM whatever it is doing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.appproc import AppProcess, free_port
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.socket_mode import SocketModeStandIn
from tests.slack.test_socket_mode import socket_env
from tests.test_metrics import sample, scrape

ATTEMPT_LINE = "Socket Mode attempt"


class FailingConnectionsOpen(SlackStandIn):
    """Slack whose apps.connections.open answers HTTP 500 ``failures`` times first, as Slack
    does in an incident (https://api.slack.com/methods/apps.connections.open: "internal_error"
    and "fatal_error" are documented errors of the method)."""

    failures_left: int = 0

    def _answer(
        self, method: str, args: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method == "apps.connections.open" and self.failures_left > 0:
            self.failures_left -= 1
            return 500, {"ok": False, "error": "internal_error"}, {}
        return super()._answer(method, args, auth)


@pytest.fixture(scope="module")
def failing_slack() -> Iterator[FailingConnectionsOpen]:
    with FailingConnectionsOpen() as server:
        yield server


def readiness_problem(app: AppProcess, wanted: str, timeout: float = 10) -> str:
    """The socket_mode problem /readyz names once it contains ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        response = app.http.get("/readyz")
        problem = str(response.json().get("problems", {}).get("socket_mode", ""))
        if response.status_code == 503 and wanted in problem:
            return problem
        assert time.monotonic() < deadline, f"/readyz said {response.text}"
        time.sleep(0.1)


def attempts_logged(app: AppProcess) -> list[str]:
    return [line for line in app.log().splitlines() if ATTEMPT_LINE in line]


def assert_quiet_and_quick_to_stop(app: AppProcess) -> None:
    """Each failed attempt is one line, nothing else warns, and SIGTERM ends it at once."""
    deadline = time.monotonic() + 10
    while len(attempts_logged(app)) < 2:
        assert time.monotonic() < deadline, app.log()[-3000:]
        time.sleep(0.1)
    assert app.http.get("/healthz").status_code == 200
    log = app.log()
    assert "Traceback" not in log, log[-3000:]
    assert "retry handler" not in log  # no retries of its own inside an attempt
    loud = [
        line
        for line in log.splitlines()
        if (" WARNING " in line or " ERROR " in line)
        and ATTEMPT_LINE not in line
        and "not ready (" not in line
    ]
    assert loud == [], loud
    started = time.monotonic()
    code = app.terminate(timeout=20)
    assert code == 0, app.log()[-3000:]
    assert time.monotonic() - started < 3, app.log()[-3000:]


def test_slack_api_unreachable_backs_off_and_stops_on_sigterm(
    start_app: StartApp, tmp_path: Path
) -> None:
    nothing = f"http://127.0.0.1:{free_port()}/api/"
    app = start_app(policy_file(tmp_path), SLACK_API_URL=nothing, **socket_env())
    problem = readiness_problem(app, "cannot connect to 127.0.0.1")
    assert "Connect call failed" in problem or "refused" in problem.lower()
    assert_quiet_and_quick_to_stop(app)


def test_refused_websocket_backs_off_and_stops_on_sigterm(
    slack_server: SlackStandIn, start_app: StartApp, tmp_path: Path
) -> None:
    token = "xapp-1-A0APP-3-refused-websocket"
    slack_server.socket_urls[token] = f"ws://127.0.0.1:{free_port()}/link"
    try:
        app = start_app(policy_file(tmp_path), **socket_env(SLACK_APP_TOKEN=token))
        readiness_problem(app, "cannot connect to 127.0.0.1")
        assert_quiet_and_quick_to_stop(app)
    finally:
        slack_server.socket_urls.pop(token, None)


def test_connections_open_500_backs_off_then_connects(
    failing_slack: FailingConnectionsOpen, start_app: StartApp, tmp_path: Path
) -> None:
    failing_slack.failures_left = 2
    with SocketModeStandIn(failing_slack) as link:
        app = start_app(policy_file(tmp_path), SLACK_API_URL=failing_slack.api_url, **socket_env())
        readiness_problem(app, "apps.connections.open answered HTTP 500 (internal_error)")
        link.wait_connected(timeout=15)
        deadline = time.monotonic() + 10
        while (ready := app.http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
        attempts = attempts_logged(app)
        assert [line.split(ATTEMPT_LINE)[1].split()[0] for line in attempts] == ["1", "2"]
        assert "next attempt in" in attempts[0] and "Traceback" not in app.log()
        assert "connected to Slack by Socket Mode (attempt 3)" in app.log()
        assert app.wait_for_log("sms-bridge ready on port").count("ready on port") == 1
        # Requests by Socket Mode are counted and timed like those by HTTP.
        link.wait_for_ack(link.command("help", "U0DEV1", "C0GENERAL", failing_slack.response_url()))
        text = scrape(app)
        assert sample(text, "sms_bridge_slack_requests_total", kind="command") == 1
        assert sample(text, "sms_bridge_slack_ack_seconds_bucket", kind="command", le="3.0") == 1
        assert app.terminate() == 0
