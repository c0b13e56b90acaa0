"""/readyz names the real cause of what stops the process from working, and the log says
"ready" once readiness passes, never before."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.health import WRITE_FAILURE_AT_LEAST, WRITE_FAILURE_FOR, Readiness
from bot.store import open_store
from tests.appproc import free_port
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.test_health import wait_for_ready_status

CHANNEL = "C0GENERAL"
READY_LINE = "sms-bridge ready on port"


def test_2chat_unreachable_makes_it_unready_naming_the_cause(start_app: StartApp) -> None:
    port = free_port()  # nothing listens there
    app = start_app(TWOCHAT_API_URL=f"http://127.0.0.1:{port}")
    # The start-up read of the account's rate limit is the first call that fails.
    problems = wait_for_ready_status(app, 503).json()["problems"]
    assert set(problems) == {"twochat"}
    assert problems["twochat"].startswith("Could not connect to 2Chat: Connect call failed")
    assert "not ready (twochat)" in app.wait_for_log("not ready (twochat)")
    assert READY_LINE not in app.log()


def test_ready_is_logged_once_and_only_once_readiness_passes(start_app: StartApp) -> None:
    app = start_app()
    log = app.wait_for_log(READY_LINE)
    assert log.count(READY_LINE) == 1 and "not ready" not in log
    unready = start_app(SLACK_BOT_TOKEN="xoxb-revoked-token")
    log = unready.wait_for_log("not ready (slack)")
    time.sleep(2.5)  # the readiness watch runs every 2 s: a wrong "ready" would be here
    assert READY_LINE not in unready.log()
    assert unready.log().count("not ready (slack)") == 1  # said once, not at every check


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system of its own (tmpfs; needs root), unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; the file that holds them."""
    filler = disk / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_sqlite_disk_full_makes_it_unready_until_a_write_succeeds(
    start_app: StartApp, slack: SlackStandIn, small_disk: Path, tmp_path: Path
) -> None:
    app = start_app(policy_file(tmp_path), DATABASE_URL=f"sqlite:///{small_disk / 'bridge.db'}")
    assert app.http.get("/readyz").status_code == 200
    filler = fill(small_disk)
    try:
        for attempt in range(3):  # the first writes may still fit in what SQLite holds
            answer = app.command(f"alice full {attempt}", "U0DEV1", CHANNEL, slack.response_url())
            if "database is unavailable" in answer.text:
                break
        assert "database is unavailable" in answer.text, answer.text
        problems = wait_for_ready_status(app, 503).json()["problems"]
        assert problems == {"database": "the database refuses writes: database or disk is full"}
    finally:
        filler.unlink()
    answer = app.command("alice room again", "U0DEV1", CHANNEL, slack.response_url())
    assert "database is unavailable" not in answer.text
    wait_for_ready_status(app, 200)
    app.terminate()


def test_healthz_answers_503_during_the_shutdown_grace(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app(TWOCHAT_READ_TIMEOUT="10")
    twochat.set_delay(3)  # a send still in flight when SIGTERM comes
    app.command("alice finish me", "U0DEV1", CHANNEL, slack.response_url())
    twochat.wait_until(lambda: twochat.api_calls("POST"), 5, "the send to reach 2Chat")
    app.proc.send_signal(signal.SIGTERM)
    app.wait_for_log("shutting down")
    health = httpx.get(f"{app.url}/healthz")  # a new connection, as a probe makes
    assert health.status_code == 503 and health.json()["status"] == "shutting down"
    assert app.http.get("/readyz").status_code == 503
    late = app.command("help", "U0DEV1", CHANNEL, slack.response_url())
    assert late.status_code == 503  # Slack retries a request it was refused
    assert app.proc.poll() is None  # still within the grace
    assert app.terminate() == 0
    assert ":white_check_mark:" in slack.wait_for_thread_reply(CHANNEL, timeout=1)["text"]


async def test_a_refused_write_stays_reported_while_a_small_write_commits(tmp_path: Path) -> None:
    """A sweep's write can fit in a full file's free pages: it must not make a process whose
    requests are refused look ready at once, nor keep it unready once writes work again."""
    store = open_store(f"sqlite:///{tmp_path / 'bridge.db'}")
    now = [100.0]

    async def slack_fine() -> None:
        return None

    readiness = Readiness(store, slack_fine, ttl=0, clock=lambda: now[0])
    store.write_failure = ("database or disk is full", 100.0)
    store.wrote_at = 101.0  # a small write committed just after the refusal
    now[0] = 102.0
    assert (await readiness.problems()) == {
        "database": "the database refuses writes: database or disk is full"
    }
    now[0] = 100.0 + WRITE_FAILURE_AT_LEAST
    assert await readiness.problems() == {}
    store.wrote_at = 90.0  # nothing committed since the refusal: unready up to the cap
    assert "database" in await readiness.problems()
    now[0] = 100.0 + WRITE_FAILURE_FOR
    assert await readiness.problems() == {}
    store.close()
