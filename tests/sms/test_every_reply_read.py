"""Every inbound SMS 2Chat lists is read and acted on, whatever came after it: a text the
bridge sent next, a message no clock can hold, a flood of SMS from strangers."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.escalation.ladder_app import ladder_config
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import deliver, mention
from tests.sms.test_replies import (
    ALICE,
    CHANNEL,
    STRANGER,
    UNKNOWN,
    relay_app,
    replies_config,
    replies_in,
    send,
    wait_replies,
)

__all__ = ["relay_app"]


def opted_out(slack: SlackStandIn, thread: str, name: str = "alice") -> bool:
    return any(f"{name} has opted out" in r["text"] for r in replies_in(slack, CHANNEL, thread))


def test_a_stop_followed_by_another_text_before_the_poll_is_still_read(
    relay_app: Callable[..., AppProcess], slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = relay_app()
    request = send(app, slack, "alice hello")
    twochat.wait_for_sends(1)
    # Alice replies STOP and the bridge texts her again before the poller reads her reply:
    # her conversation now ends with an outbound SMS.
    twochat.exchange(ALICE, ("inbound", "STOP"), ("outbound", "are you there?"))
    [reply] = wait_replies(slack, CHANNEL, request["_ts"], 1)
    assert "alice has opted out" in reply["text"]
    refused = app.command("alice one more", "U0ADMIN", CHANNEL, slack.response_url()).json()
    assert "alice replied STOP; they have opted out" in refused["text"]


def test_a_message_with_an_impossible_timestamp_blocks_no_other_reply(
    relay_app: Callable[..., AppProcess],
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    app = relay_app(replies_config(tmp_path, unknown_numbers_channel=UNKNOWN))
    request = send(app, slack, "alice hello")
    twochat.wait_for_sends(1)
    twochat.inbound(STRANGER, "from the far future", ts=10**20)
    twochat.inbound(ALICE, "STOP")
    slack.wait_until(lambda: opted_out(slack, request["_ts"]), 5, "alice's STOP read")
    # The odd message itself is relayed too (read as one without a timestamp).
    [post] = slack.wait_for_posts(1, channel=UNKNOWN)
    assert "from the far future" in post["text"]
    twochat.inbound(ALICE, "START")  # the conversation keeps being read after it
    slack.wait_until(
        lambda: any(
            "opted back in" in r["text"] for r in replies_in(slack, CHANNEL, request["_ts"])
        ),
        5,
        "alice's START read",
    )
    assert "Traceback" not in app.log()


def test_a_flood_of_sms_from_strangers_does_not_hold_up_a_stop(
    relay_app: Callable[..., AppProcess],
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    """Reading a stranger's SMS costs a paced 2Chat call (here about 0.5 s: 120 a minute);
    40 of them take 20 s. A STOP from someone the bridge texted waits for none of them."""
    config = replies_config(tmp_path, unknown_numbers_channel=UNKNOWN)
    config.write_text(
        config.read_text().replace("limits:\n", "limits:\n  requests_per_minute: 120\n", 1)
    )
    app = relay_app(config)
    request = send(app, slack, "alice hello")
    twochat.wait_for_sends(1)
    strangers = [f"+4477009{n:05d}" for n in range(40)]
    for number in strangers:
        twochat.inbound(number, "wrong number?")
    slack.wait_for_posts(1, channel=UNKNOWN, timeout=10)  # the bridge is reading them
    twochat.inbound(ALICE, "STOP")
    stopped = time.monotonic()
    slack.wait_until(lambda: opted_out(slack, request["_ts"]), 6, "alice's STOP read")
    assert time.monotonic() - stopped < 6
    assert len(slack.posts(UNKNOWN)) < len(strangers)  # strangers still waiting: STOP first


def test_a_database_failure_between_polls_does_not_stop_reading_replies(
    relay_app: Callable[..., AppProcess],
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    """Between polls the poller asks the database whether a page awaits its ack (to poll
    faster); the database failing then used to end the poller for good."""
    database = tmp_path / "bridge.db"
    app = relay_app(ladder_config(tmp_path, poll="1s"), DATABASE_URL=f"sqlite:///{database}")
    request = send(app, slack, "alice hello")
    twochat.wait_for_sends(1)
    aside = tmp_path / "aside.db"
    os.replace(database, aside)  # the database file swapped for one that is not a database
    database.write_bytes(b"not a database " * 100)
    app.wait_for_log("database", timeout=5)
    time.sleep(1.5)  # a poll and the wait after it, both failing
    os.replace(aside, database)  # back
    twochat.inbound(ALICE, "STOP")
    slack.wait_until(lambda: opted_out(slack, request["_ts"]), 15, "alice's STOP read")


def test_a_stop_recorded_by_a_process_killed_before_it_acted_is_acted_on_after_a_restart(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """kill -9 between recording an inbound STOP and finishing what it leads to (here: the
    post in the thread that says so, which the network holds up). The STOP was recorded,
    so every later poll skipped it: the thread never said so. Now the next poller, in the
    restarted process, finishes it."""
    config = replies_config(tmp_path)
    database = f"sqlite:///{tmp_path / 'bridge.db'}"
    first = start_app(config, DATABASE_URL=database)
    request = send(first, slack, "alice hello")
    twochat.wait_for_sends(1)
    slack.wait_until(
        lambda: any(p.get("thread_ts") == request["_ts"] for p in slack.posts(CHANNEL)),
        5,
        "the send's outcome in its thread",
    )
    slack.stall("chat.postMessage")
    twochat.inbound(ALICE, "STOP")
    # The post in this request's thread: only the first process can have recorded the STOP.
    slack.wait_until(
        lambda: any(
            c.args.get("thread_ts") == request["_ts"] and "opted out" in str(c.args.get("text"))
            for c in list(slack.stalled_calls)
        ),
        15,
        "the STOP's post on its way",
    )
    first.kill()
    slack.unstall()
    assert not opted_out(slack, request["_ts"])
    second = start_app(config, DATABASE_URL=database)
    # The killed poller's lease runs out first (10 s at the least).
    slack.wait_until(lambda: opted_out(slack, request["_ts"]), 30, "alice's STOP acted on")
    assert "recorded earlier" in second.wait_for_log("recorded earlier")
    refused = second.command("alice one more", "U0ADMIN", CHANNEL, slack.response_url()).json()
    assert "alice replied STOP; they have opted out" in refused["text"]
    second.terminate()


def test_an_sms_whose_action_keeps_failing_is_tried_less_often_then_given_up_aloud(
    relay_app: Callable[..., AppProcess],
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    """A STOP the database refuses to act on (a trigger rejects alice's opt-out) used to be
    tried again on every poll for ever. Now each failure puts the next try off, twice as
    many polls each time, and the sixth is the last: an error in the log and a note in the
    thread; later polls leave it alone while other replies are still read."""
    database = tmp_path / "bridge.db"
    app = relay_app(DATABASE_URL=f"sqlite:///{database}")
    request = send(app, slack, "alice hello")
    twochat.wait_for_sends(1)
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as conn, conn:
        conn.execute(
            f"CREATE TRIGGER poison BEFORE INSERT ON opt_outs WHEN NEW.number = '{ALICE}' "
            "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
        )
    twochat.inbound(ALICE, "STOP")
    # Pauses of 2, 4, 8, 16 and 32 polls of 0.2 s between the six tries: 12.4 s.
    log = app.wait_for_log("gave up on the SMS", timeout=40)
    tries = re.findall(r"(\d\d:\d\d:\d\d,\d+) WARNING .* acted on \(try (\d) of 6", log)
    assert [int(n) for _, n in tries] == [1, 2, 3, 4, 5]
    [gave_up_at] = re.findall(r"(\d\d:\d\d:\d\d,\d+) ERROR .* gave up on the SMS", log)
    first, given_up = parse_time(tries[0][0]), parse_time(gave_up_at)
    assert (given_up - first).total_seconds() > 0.2 * (4 + 8 + 16 + 32) * 0.8
    note = slack.wait_until(
        lambda: [r for r in replies_in(slack, CHANNEL, request["_ts"]) if "gave up" in r["text"]],
        5,
        "the note in the thread",
    )
    assert "(an opt-out) after 6 tries" in note[0]["text"]
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as conn:
        row = conn.execute("SELECT kind, pending FROM inbound_messages").fetchone()
    assert row == ("failed-stop", None)
    twochat.inbound(ALICE, "on my way")  # read by later polls, which leave the STOP alone
    wait_replies(slack, CHANNEL, request["_ts"], 2)
    assert app.log().count("could not be acted on") == 5


def test_a_reply_that_comes_while_slack_refuses_posts_is_posted_once_slack_is_back(
    relay_app: Callable[..., AppProcess], slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """Slack refuses every route of a reply's post (the page's thread, then the pager in
    private; a page has no response_url): the reply used to be marked done and was never
    shown. Now it stays pending and a later poll posts it; its action (here an opt-out)
    counts once, and the post says what it did."""
    app = relay_app()
    event = mention("page alice hello", user="U0ADMIN", channel=CHANNEL)
    deliver(app, event)
    twochat.wait_for_sends(1)
    slack.wait_until(
        lambda: any(p.get("thread_ts") == event["ts"] for p in slack.posts(CHANNEL)),
        5,
        "the page's outcome in its thread",
    )
    slack.fail("chat.postMessage", "service_unavailable", status=503, times=4)
    twochat.inbound(ALICE, "STOP")
    app.wait_for_log("Slack took the reply by no route")
    [reply] = wait_replies(slack, CHANNEL, event["ts"], 1)
    assert "alice has opted out" in reply["text"] and "STOP" in reply["text"]
    twochat.inbound(ALICE, "on my way")
    later = wait_replies(slack, CHANNEL, event["ts"], 2)
    assert sum("opted out" in r["text"] for r in later) == 1
    refused = app.command("alice one more", "U0ADMIN", CHANNEL, slack.response_url()).json()
    assert "alice replied STOP; they have opted out" in refused["text"]


def parse_time(logged: str) -> datetime:
    """A log line's time of day (HH:MM:SS,mmm)."""
    return datetime.strptime(logged, "%H:%M:%S,%f")
