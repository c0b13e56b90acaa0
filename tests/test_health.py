"""Liveness and readiness: /readyz names what stops the process from working."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.twochat_server import TwoChatStandIn


def wait_for_ready_status(app: AppProcess, status: int, timeout: float = 10) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (response := app.http.get("/readyz")).status_code != status:
        assert time.monotonic() < deadline, (
            f"/readyz stayed {response.status_code}: {response.text}"
        )
        time.sleep(0.1)
    return response


def test_ready_when_slack_database_and_2chat_are_fine(start_app: StartApp) -> None:
    app = start_app()
    response = app.http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True}


def test_rejected_bot_token_is_not_ready_but_alive(start_app: StartApp) -> None:
    app = start_app(SLACK_BOT_TOKEN="xoxb-revoked-token")
    response = app.http.get("/readyz")
    assert response.status_code == 503
    assert "Slack rejected the bot token (invalid_auth)" in response.json()["problems"]["slack"]
    assert app.http.get("/healthz").status_code == 200
    assert "not ready (slack)" in app.wait_for_log("not ready (slack)")
    assert "xoxb-revoked-token" not in response.text + app.log()


def test_database_outage_makes_it_unready_and_recovery_ready_again(
    start_app: StartApp, postgres_url: str
) -> None:
    url = urlsplit(postgres_url)
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 5432) as proxy:
        netloc = f"{url.username}@127.0.0.1:{proxy.port}"
        app = start_app(DATABASE_URL=urlunsplit(url._replace(netloc=netloc)))
        assert app.http.get("/readyz").status_code == 200
        proxy.cut()
        started = time.monotonic()
        problems = wait_for_ready_status(app, 503).json()["problems"]
        assert "database" in problems and set(problems) == {"database"}
        assert time.monotonic() - started < 8
        assert app.http.get("/healthz").status_code == 200
        proxy.restore()
        wait_for_ready_status(app, 200, timeout=20)


def test_2chat_rejecting_the_key_makes_it_unready_without_spending_credits(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app(TWOCHAT_API_KEY="a-revoked-2chat-key")
    app.command("alice the disk is full", "U0DEV1", "C0GENERAL", slack.response_url())
    problems = wait_for_ready_status(app, 503).json()["problems"]
    assert problems == {"twochat": "2Chat rejected the API key (HTTP 401): check TWOCHAT_API_KEY"}
    for _ in range(3):
        app.http.get("/readyz")
    sends = [call for call in twochat.requests if call.startswith("POST")]
    assert len(sends) <= 1  # the one refused send; probes never call 2Chat
    assert "a-revoked-2chat-key" not in app.log()
