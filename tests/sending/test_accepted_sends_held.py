"""A send 2Chat accepted while the database failed is recorded once the database is back:
it is never reported as cut off by a crash, and never offered for a Retry that would text
the person again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.twochat_server import TwoChatStandIn
from tests.test_outage import behind_proxy, proxy

__all__ = ["proxy"]
CHANNEL = "C0GENERAL"


def test_an_accepted_send_is_recorded_after_a_database_cut(
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
        TWOCHAT_CONNECT_TIMEOUT="0.5",
        TWOCHAT_READ_TIMEOUT="2",
        SWEEP_INTERVAL_SECONDS="0.2",
    )
    twochat.set_delay(1.0)
    response = app.command(
        "alice the database is about to go", "U0ADMIN", CHANNEL, slack.response_url()
    )
    assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(1)
    proxy.cut()  # 2Chat accepts the SMS while the bridge cannot record it
    slack.wait_until(lambda: twochat.records[0].status == 202, 5, "2Chat's 202")
    time.sleep(4)  # the claim goes stale: a sweeper would take the send for a crashed one
    proxy.restore()

    def recorded() -> tuple[str, str | None] | None:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT state, message_id FROM sends").fetchone()
        return (row[0], row[1]) if row and row[0] != "sending" else None

    state, message_id = slack.wait_until(recorded, 20, "the send recorded")
    assert state == "sent" and message_id and message_id.startswith("SMO")
    time.sleep(1)  # sweeps after the database came back
    said = json.dumps([call.args for call in list(slack.calls)])
    assert "the bridge stopped while sending" not in said
    assert "send_retry" not in said
    assert len(twochat.sends) == 1
