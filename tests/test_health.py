"""Liveness and readiness: /readyz names what stops the process from working."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.tcp_proxy import TcpProxy


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
