"""An alert that arrives while the database is down is paged once it is back (Slack was
answered at once and never sends it again), and its thread says meanwhile that it waits."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import ALICE, BOB, INCIDENT, alert, deliver, final_reply
from tests.test_outage import behind_proxy, proxy

__all__ = ["proxy"]


def test_an_alert_during_a_database_outage_is_paged_when_it_is_back(
    start_app: StartApp,
    tmp_path: Path,
    postgres_url: str,
    proxy: TcpProxy,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    app = start_app(policy_file(tmp_path), DATABASE_URL=behind_proxy(postgres_url, proxy))
    proxy.cut()
    event = alert("CRITICAL: db-1 is down and so is the bridge's database")
    deliver(app, event)
    waiting = slack.wait_until(
        lambda: [r for r in slack.thread_replies(INCIDENT) if r.get("thread_ts") == event["ts"]],
        25,  # the first store call waits for a pool connection before it gives up
        "the alert's thread told the page waits",
    )
    assert "database is unavailable" in str(waiting[0]["text"])
    assert twochat.sends == []
    proxy.restore()
    sends = twochat.wait_for_sends(2, timeout=30)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    final_reply(slack, INCIDENT, event["ts"], 2)
