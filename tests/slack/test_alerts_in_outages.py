"""An alert that arrives while the database is down is paged once it is back: Slack is
answered 503, so it delivers the alert again (at once, after 1 and 5 minutes), and the
process that got it waits for the database too; its thread says meanwhile that it waits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import (
    ALICE,
    BOB,
    INCIDENT,
    alert,
    final_reply,
    new_event_id,
    settle,
)
from tests.test_outage import behind_proxy, proxy

__all__ = ["proxy"]


def waiting_note(slack: SlackStandIn, thread: str) -> list[dict[str, object]]:
    """The thread's replies once one says the page waits for the database."""
    replies: list[dict[str, object]] = slack.wait_until(
        lambda: [r for r in slack.thread_replies(INCIDENT) if r.get("thread_ts") == thread],
        # While the database is known down a store call is refused within a second, and
        # so is one that began before it was known (test_postgres_pool), so the alert's
        # is not held up long behind calls queued before it (the startup's budget reads,
        # the sweeper): a few seconds, with room here for a loaded machine. When each
        # could wait the pool's 10 s for a connection, the note came 11-25 s into the
        # outage.
        15,
        "the alert's thread told the page waits",
    )
    assert "database is unavailable" in str(replies[0]["text"])
    return replies


@pytest.fixture
def database(postgres_url: str, proxy: TcpProxy) -> str:
    """The test database, reached through ``proxy`` (which a test cuts and restores)."""
    return behind_proxy(postgres_url, proxy)


def alert_while_down(
    app: AppProcess, proxy: TcpProxy, slack: SlackStandIn, text: str
) -> tuple[dict[str, Any], str]:
    """The database cut, then an alert: answered 503 (Slack, deliver it again), and its
    thread says the page waits. The event and its id."""
    proxy.cut()
    event = alert(text)
    event_id = new_event_id()
    assert app.event(event, event_id).status_code == 503
    waiting_note(slack, event["ts"])
    return event, event_id


def test_an_alert_during_a_database_outage_is_paged_when_it_is_back(
    start_app: StartApp,
    tmp_path: Path,
    database: str,
    proxy: TcpProxy,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    app = start_app(policy_file(tmp_path), DATABASE_URL=database)
    event, event_id = alert_while_down(
        app, proxy, slack, "CRITICAL: db-1 is down and so is the bridge's database"
    )
    assert app.event(event, event_id, retry=1).status_code == 503  # no second waiter
    assert twochat.sends == []
    proxy.restore()
    sends = twochat.wait_for_sends(2, timeout=30)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    final_reply(slack, INCIDENT, event["ts"], 2)
    # Slack's last redelivery, after the page went out: taken already.
    assert app.event(event, event_id, retry=2).status_code == 200
    settle()
    assert len(twochat.sends) == 2
    assert len(waiting_note(slack, event["ts"])) == 2  # the note and the outcome, once each


def test_an_alert_during_a_database_outage_survives_a_restart(
    start_app: StartApp,
    tmp_path: Path,
    proxy: TcpProxy,
    database: str,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    """The process that got the alert dies before the database is back: Slack's
    redelivery (asked for by the 503) reaches the next one, which pages it once."""
    config = policy_file(tmp_path)
    first = start_app(config, DATABASE_URL=database)
    event, event_id = alert_while_down(
        first, proxy, slack, "CRITICAL: db-1 is down and the bridge is about to restart"
    )
    first.kill()
    proxy.restore()
    second = start_app(config, DATABASE_URL=database)
    assert second.event(event, event_id, retry=1).status_code == 200  # a minute later
    sends = twochat.wait_for_sends(2, timeout=30)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    final_reply(slack, INCIDENT, event["ts"], 2)
    assert second.event(event, event_id, retry=2).status_code == 200  # five minutes later
    settle()
    assert len(twochat.sends) == 2
    replies = waiting_note(slack, event["ts"])
    assert len(replies) == 2, replies  # "waits", then the page's outcome
    second.terminate()
