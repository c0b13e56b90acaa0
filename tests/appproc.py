"""Runs sms-bridge for real (``python -m bot``) against the local stand-ins."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.signing import (
    event_body,
    interaction_body,
    signed_headers,
    slash_command_body,
)

ROOT = Path(__file__).resolve().parent.parent
TWOCHAT_KEY = "test-2chat-key-s3cr3t-value"
# Every variable the app reads besides the SLACK_/TWOCHAT_/SMS_BRIDGE_ ones: a developer's
# own values (in the shell or in a .env) must never change a test's result.
OTHER_SETTINGS = (
    "DATABASE_URL",
    "PORT",
    "METRICS_PORT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "SHUTDOWN_GRACE_SECONDS",
)
SETTINGS_PREFIXES = ("SLACK_", "TWOCHAT_", "SMS_BRIDGE_", "SWEEP_")


def hermetic_env(**extra: str) -> dict[str, str]:
    """This process's environment without any of the app's settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(SETTINGS_PREFIXES) and key not in OTHER_SETTINGS
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppProcess:
    """One app process; its stderr goes to a log file that tests can scan."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=log_path.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"app exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"app not ready in {timeout}s:\n{self.log()}")

    def wait_for_log(self, text: str, timeout: float = 5) -> str:
        """The log once it contains ``text`` (the app writes it from its own process)."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout}s:\n{log[-2000:]}")
            time.sleep(0.02)
        return log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def post_signed(self, body: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(
            "/slack/events", content=body, headers=headers or signed_headers(body)
        )

    def command(self, text: str, user: str, channel: str, response_url: str) -> httpx.Response:
        return self.post_signed(slash_command_body(text, user, channel, response_url))

    def kill(self) -> None:
        """kill -9: no shutdown, in-flight work is cut off mid-way."""
        self.proc.kill()
        self.proc.wait()
        self.http.close()
        self._log.close()

    def event(self, event: dict[str, Any], event_id: str, retry: int = 0) -> httpx.Response:
        """Deliver an Events API callback; ``retry`` > 0 marks it as Slack's redelivery."""
        body = event_body(event, event_id)
        # Slack signs each delivery afresh: a redelivery carries a later timestamp.
        headers = {
            **signed_headers(body, timestamp=int(time.time()) + retry),
            "Content-Type": "application/json",
        }
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return self.post_signed(body, headers)

    def interact(self, payload: dict[str, object]) -> httpx.Response:
        return self.post_signed(interaction_body(payload))

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()
        self._log.close()
        return self.proc.returncode


def app_env(
    slack_api_url: str, twochat_url: str, config: Path, tmp: Path, **extra: str
) -> dict[str, str]:
    from tests.fakes.signing import SIGNING_SECRET
    from tests.fakes.slack_server import BOT_TOKEN

    env = hermetic_env()
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        TWOCHAT_API_KEY=TWOCHAT_KEY,
        SLACK_API_URL=slack_api_url,
        TWOCHAT_API_URL=twochat_url,
        SMS_BRIDGE_CONFIG=str(config),
        DATABASE_URL=f"sqlite:///{tmp / 'bridge.db'}",
        PORT=str(free_port()),
        TWOCHAT_READ_TIMEOUT="1",
        TWOCHAT_CONNECT_TIMEOUT="1",
        SHUTDOWN_GRACE_SECONDS="10",
        LOG_LEVEL="DEBUG",
    )
    env.update(extra)
    return env
