"""A database outage while Slack waits: every answer comes within Slack's 3 seconds, as a
polite refusal, and a request Slack was told failed is never sent, even when its insert
lands late. The app runs for real; Postgres sits behind a TCP proxy the test can cut."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_approvals import click, ephemerals, request_approval
from tests.slack.test_modal import submit
from tests.test_health import wait_for_ready_status

CHANNEL = "C0GENERAL"
REFUSAL = "the bridge's database is unavailable right now; try again in a minute"
SLACK_WAITS = 3.0
# 2Chat timeouts of 1 s each (tests/appproc.py) make a request "stale" for the sweeper
# after 4 s; waiting a little longer gives it every chance to (wrongly) resume one.
SWEEPER_WOULD_RESUME_AFTER = 5.0
T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """Slack's answer and how long it took, as Slack's own clock would see it."""
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def sms(app: AppProcess, slack: SlackStandIn, text: str, user: str = "U0DEV1") -> httpx.Response:
    return app.command(text, user, CHANNEL, slack.response_url())


def answer_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["text"]) if response.content else ""


def texts_sent(twochat: TwoChatStandIn) -> list[str]:
    return [str(send["text"]) for send in list(twochat.sends)]


def wait_for_text(twochat: TwoChatStandIn, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in texts_sent(twochat):
        assert time.monotonic() < deadline, f"{text!r} never sent: {texts_sent(twochat)}"
        time.sleep(0.05)


def accepted_again(app: AppProcess, slack: SlackStandIn, text: str, timeout: float = 20) -> None:
    """A /sms once the database is back: the pool may need a moment to reconnect, and until
    then each attempt is refused in time, never left hanging."""
    deadline = time.monotonic() + timeout
    while True:
        response, took = timed(lambda: sms(app, slack, text))
        answer = answer_text(response)
        if not answer:
            return
        assert REFUSAL in answer and took < SLACK_WAITS
        assert time.monotonic() < deadline, "/sms still refused after the outage"
        time.sleep(0.5)


def behind_proxy(postgres_url: str, proxy: TcpProxy) -> str:
    url = urlsplit(postgres_url)
    return urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = urlsplit(postgres_url)
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


def test_postgres_outage_is_refused_in_time_and_sends_resume_after_it(
    start_app: StartApp,
    tmp_path: Path,
    postgres_url: str,
    proxy: TcpProxy,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    app = start_app(
        policy_file(tmp_path),
        DATABASE_URL=behind_proxy(postgres_url, proxy),
        SWEEP_INTERVAL_SECONDS="0.5",
    )
    waiting = request_approval(app, slack)
    proxy.cut()

    response, took = timed(lambda: sms(app, slack, "alice refused during the outage"))
    assert REFUSAL in answer_text(response) and took < SLACK_WAITS
    response, took = timed(lambda: sms(app, slack, "help"))
    assert "/sms <to> <text>" in answer_text(response) and took < SLACK_WAITS
    form, took = timed(lambda: submit(app, slack, "U0ADMIN", to="bob", text="modal"))
    assert form is not None and REFUSAL in str(form["errors"]) and took < SLACK_WAITS
    status, took = timed(lambda: click(app, "U0ADMIN", "approval_approve", waiting))
    assert status == 200 and took < SLACK_WAITS
    told = slack.wait_until(lambda: ephemerals(slack, "U0ADMIN"), 20, "the clicker told")
    assert "database is unavailable" in told[0]

    proxy.restore()
    wait_for_ready_status(app, 200, timeout=30)
    with psycopg.connect(postgres_url) as conn:
        recorded = conn.execute("SELECT text FROM requests").fetchall()
    assert ("refused during the outage",) not in recorded and ("modal",) not in recorded
    accepted_again(app, slack, "alice back again")
    wait_for_text(twochat, "back again")
    time.sleep(SWEEPER_WOULD_RESUME_AFTER)
    assert "refused during the outage" not in texts_sent(twochat)
    assert "modal" not in texts_sent(twochat)


STALL_LOCK = 4242


@pytest.fixture
def stalling_commits(postgres_url: str) -> Iterator[Callable[[], None]]:
    """Every commit that inserts a request waits for a lock the test holds: the database
    has the request but answers late. Yields the release."""
    with psycopg.connect(postgres_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [STALL_LOCK])
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                holder.execute("SELECT pg_advisory_unlock(%s)", [STALL_LOCK])

        yield release
        release()


def install_stall(postgres_url: str) -> None:
    """A deferred trigger runs at COMMIT: the insert is done, the commit waits for the lock."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION stall_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM pg_advisory_xact_lock({STALL_LOCK}); RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER stall_commit AFTER INSERT ON requests "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION stall_commit()"
        )


def test_a_request_whose_commit_lands_late_is_never_sent(
    start_app: StartApp,
    tmp_path: Path,
    postgres_url: str,
    stalling_commits: Callable[[], None],
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    app = start_app(policy_file(tmp_path), DATABASE_URL=postgres_url, SWEEP_INTERVAL_SECONDS="0.5")
    install_stall(postgres_url)
    # The lock goes once Slack has long given up: the commit can then land, late.
    threading.Timer(4.0, stalling_commits).start()
    response, took = timed(lambda: sms(app, slack, "alice recorded too late"))
    assert REFUSAL in answer_text(response) and took < SLACK_WAITS

    time.sleep(SWEEPER_WOULD_RESUME_AFTER)
    with psycopg.connect(postgres_url) as conn:
        states = conn.execute(
            "SELECT state FROM requests WHERE text = 'recorded too late'"
        ).fetchall()
        conn.execute("DROP TRIGGER stall_commit ON requests")
    assert states in ([], [("expired",)])
    assert "recorded too late" not in texts_sent(twochat)
    accepted_again(app, slack, "alice after the stall")
    wait_for_text(twochat, "after the stall")


def sqlite_path(app: AppProcess) -> Path:
    """Where tests/appproc.py puts an app's SQLite database."""
    return app.log_path.parent / "bridge.db"


def test_sqlite_locked_by_another_process_is_refused_in_time(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app()
    other = sqlite3.connect(sqlite_path(app), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        response, took = timed(lambda: sms(app, slack, "alice while locked"))
        assert REFUSAL in answer_text(response) and took < SLACK_WAITS
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert answer_text(sms(app, slack, "alice once unlocked")) == ""
    wait_for_text(twochat, "once unlocked")
    assert "while locked" not in texts_sent(twochat)


def test_sqlite_file_replaced_under_the_app_is_refused_not_written_into_the_void(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app()
    path = sqlite_path(app)
    replacement = path.with_name("restored.db")
    replacement.write_bytes(b"not a database " * 100)
    os.replace(replacement, path)

    response, took = timed(lambda: sms(app, slack, "alice after the swap"))
    assert REFUSAL in answer_text(response) and took < SLACK_WAITS
    problems = wait_for_ready_status(app, 503).json()["problems"]
    assert set(problems) == {"database"}
    assert "after the swap" not in texts_sent(twochat)
