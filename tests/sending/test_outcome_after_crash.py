"""A process killed between a request's steps leaves one request message in the channel,
and it ends up saying what happened.

- Killed after its last send was recorded but before the outcome reached the thread: the
  request is complete in the database, yet its live reply still says "Sending…". The next
  process posts the outcome there (the outcome stays owed to the thread until it lands,
  like one Slack refused).
- Killed while it posted the request message (Slack took it), so before it could store
  the message's ts: the next process finds that message in the channel and reports under
  it, never posting a second one."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.conftest import StartApp
from tests.escalation.ladder_app import ALICE, BOB, eventually
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import GENERAL

# Short timeouts make a lapsed lease 3 s old; sweeps are quick.
FAST = {
    "TWOCHAT_CONNECT_TIMEOUT": "0.5",
    "TWOCHAT_READ_TIMEOUT": "0.5",
    "SWEEP_INTERVAL_SECONDS": "0.2",
}


def rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(database, timeout=5)
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


def completed(database: Path) -> bool:
    return rows(database, "SELECT state FROM requests") == [("completed",)]


def test_a_kill_between_the_last_send_and_its_outcome_still_reports_it(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    database = tmp_path / "shared.db"
    doomed = start_app(DATABASE_URL=f"sqlite:///{database}", **FAST)
    twochat.set_delay(0.3)  # both sends in flight (within the read timeout) while edits turn slow
    command = "db-oncall the disk is full"
    response = doomed.command(command, "U0ADMIN", GENERAL, slack.response_url())
    assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(2)
    # Every edit now hangs, so the process is still editing when its last send is recorded;
    # what Slack received before the kill it shows (the stand-in records it after the wait).
    slack.slow("chat.update", 4.0)
    eventually(lambda: completed(database), 10, "the request completed in the database")
    doomed.kill()
    slack.delays.clear()
    twochat.set_delay(0)

    start_app(DATABASE_URL=f"sqlite:///{database}", **FAST)
    [request] = [post for post in slack.posts(GENERAL) if not post.get("thread_ts")]

    def outcome() -> str | None:
        for reply in slack.posts(GENERAL):
            text = str(slack.latest(reply).get("text"))
            if reply.get("thread_ts") == request["_ts"] and text.count("message_id") == 2:
                return text
        return None

    text = eventually(outcome, 15, f"the outcome in the thread; posts: {slack.posts(GENERAL)}")
    assert ALICE in text and BOB in text
    assert len(twochat.sends) == 2  # nobody texted again


def test_a_kill_before_the_request_message_is_stored_leaves_one_request_message(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    database = tmp_path / "shared.db"
    doomed = start_app(DATABASE_URL=f"sqlite:///{database}", **FAST)
    slack.slow("chat.postMessage", 1.5)  # Slack takes the post, the process dies meanwhile
    response = doomed.command("alice the pager is quiet", "U0ADMIN", GENERAL, slack.response_url())
    assert response.status_code == 200 and not response.content
    time.sleep(0.5)
    doomed.kill()
    [posted] = slack.wait_for_posts(1, channel=GENERAL)
    slack.delays.clear()
    assert rows(database, "SELECT thread_ts FROM requests") == [(None,)]
    assert twochat.sends == []

    start_app(DATABASE_URL=f"sqlite:///{database}", **FAST)
    reply = slack.wait_for_thread_reply(GENERAL, timeout=15)
    assert reply["thread_ts"] == posted["_ts"] and "message_id" in reply["text"]
    assert [p for p in slack.posts(GENERAL) if not p.get("thread_ts")] == [posted]
    assert [s["to_number"] for s in twochat.sends] == [ALICE]
