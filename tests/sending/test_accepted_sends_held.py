"""A send 2Chat accepted while the database failed is recorded once the database is back:
it is never reported as cut off by a crash, and never offered for a Retry that would text
the person again."""

from __future__ import annotations

import contextlib
import json
import resource
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.twochat_server import TwoChatStandIn
from tests.test_outage import behind_proxy, proxy
from tests.test_readiness_causes import fill, small_disk

__all__ = ["proxy", "small_disk"]
CHANNEL = "C0GENERAL"


def test_an_accepted_send_is_recorded_after_a_database_cut(
    start_app: StartApp,
    tmp_path: Path,
    postgres_url: str,
    proxy: TcpProxy,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    app = start_app(policy_file(tmp_path), DATABASE_URL=behind_proxy(postgres_url, proxy), **FAST)

    def recorded() -> tuple[str, str | None] | None:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT state, message_id FROM sends").fetchone()
        return (row[0], row[1]) if row and row[0] != "sending" else None

    with accepted_while(app, slack, twochat, proxy.cut):
        pass
    proxy.restore()
    held_send_is_recorded_once(app, slack, twochat, recorded)


@pytest.fixture(params=["file_size_limit", "full_tmpfs"])
def full_disk(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Path, Callable[[AppProcess], Callable[[], None]]]]:
    """Where the database goes, and how to fill "the disk" under an app, returning how to
    free it again. ``file_size_limit`` needs no root: the app's file-size limit (which any
    user may lower, ``prlimit``) is set to what the database files hold, so no file may
    grow and what they hold can be written again, as on a full disk (SQLite reads the
    kernel's EFBIG as an I/O error). ``full_tmpfs`` is a real full file system (ENOSPC,
    "database or disk is full"), where mounting one is allowed."""
    if request.param == "full_tmpfs":
        disk = request.getfixturevalue("small_disk")

        def fill_tmpfs(app: AppProcess) -> Callable[[], None]:
            return fill(disk).unlink

        yield disk / "bridge.db", fill_tmpfs
        return
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)

    def limit_files(app: AppProcess) -> Callable[[], None]:
        room = max(path.stat().st_size for path in tmp_path.glob("bridge.db*"))
        resource.prlimit(app.proc.pid, resource.RLIMIT_FSIZE, (room, limit[1]))
        return lambda: resource.prlimit(app.proc.pid, resource.RLIMIT_FSIZE, limit) and None

    yield tmp_path / "bridge.db", limit_files


def test_an_accepted_send_is_recorded_after_sqlites_disk_was_full(
    start_app: StartApp,
    tmp_path: Path,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    full_disk: tuple[Path, Callable[[AppProcess], Callable[[], None]]],
) -> None:
    """The disk fills while 2Chat is sending: the write that records its acceptance fails,
    then room comes back."""
    database, fill_under = full_disk
    app = start_app(policy_file(tmp_path), DATABASE_URL=f"sqlite:///{database}", **FAST)
    freed: list[Callable[[], None]] = []

    def recorded() -> tuple[str, str | None] | None:
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as conn:
            row = conn.execute("SELECT state, message_id FROM sends").fetchone()
        return (row[0], row[1]) if row and row[0] != "sending" else None

    with accepted_while(app, slack, twochat, lambda: freed.append(fill_under(app))):
        assert _state(database) == "sending"
    freed[0]()
    held_send_is_recorded_once(app, slack, twochat, recorded)


def _state(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as conn:
        return str(conn.execute("SELECT state FROM sends").fetchone()[0])


FAST = {
    "TWOCHAT_CONNECT_TIMEOUT": "0.5",
    "TWOCHAT_READ_TIMEOUT": "2",
    "SWEEP_INTERVAL_SECONDS": "0.2",
}


@contextlib.contextmanager
def accepted_while(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, fail_writes: Callable[[], object]
) -> Iterator[None]:
    """A text 2Chat accepts after the database started failing writes; inside, the send's
    claim has gone stale (a sweeper would take it for one a crash cut off)."""
    twochat.set_delay(1.0)
    response = app.command(
        "alice the database is about to go", "U0ADMIN", CHANNEL, slack.response_url()
    )
    assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(1)
    fail_writes()  # 2Chat accepts the SMS while the bridge cannot record it
    slack.wait_until(lambda: twochat.records[0].status == 202, 5, "2Chat's 202")
    time.sleep(4)
    yield


def held_send_is_recorded_once(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    recorded: Callable[[], tuple[str, str | None] | None],
) -> None:
    """Once the database is back: the send is recorded as sent, never reported as cut off
    by a crash, never offered for Retry, and texted once. The log says so in one warning,
    not an error: nothing was lost."""
    state, message_id = slack.wait_until(recorded, 20, "the send recorded")
    assert state == "sent" and message_id and message_id.startswith("SMO")
    time.sleep(1)  # sweeps after the database came back
    said = json.dumps([call.args for call in list(slack.calls)])
    assert "the bridge stopped while sending" not in said
    assert "send_retry" not in said
    assert len(twochat.sends) == 1
    log = app.log()
    assert log.count("held in this process and recorded as soon as the database answers") == 1
    assert "on_result failed" not in log
