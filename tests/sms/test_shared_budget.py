"""One 2Chat budget for the whole deployment, against a 2Chat stand-in that enforces the
account's limit (429 beyond it, which fails a test unless it expected them).

The app runs for real: two processes on one Postgres share the budget; a 429 waits for
budget instead of failing the send; ``/sms status`` and reply polling wait their turn by
priority, polling with its floor during a long page; a dry run calls 2Chat for nothing; a
long send shows its pace, its time left and its state on the request message.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from bot.sending.progress import Tally, pace_text, status_line, time_left
from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
PACING = "pacing 2Chat calls under"
ALICE, BOB = "+447700900123", "+447700900456"


def roster_number(i: int) -> str:
    return f"+4477009002{i:02d}"


def budget_config(
    tmp: Path, per_minute: int | None, roster: int = 0, replies: str | None = None
) -> Path:
    """The shipped policy with a ``roster`` group of that many contacts, the policy's
    ``requests_per_minute`` (None: learnt from 2Chat) and an optional ``replies`` section."""
    names = [f"m{i:02d}" for i in range(1, roster + 1)]
    contacts = "".join(f'\n  {name}: "{roster_number(i)}"' for i, name in enumerate(names, 1))
    limits = "per_recipient_per_hour: 10000"
    if per_minute is not None:
        limits += f"\n  requests_per_minute: {per_minute}"
    if replies is not None:
        limits += f"\nreplies:\n  {replies}"
    return policy_file(
        tmp,
        {
            'carol: "+34600000001"': f'carol: "+34600000001"{contacts}',
            "db-oncall: [alice, bob]": f"db-oncall: [alice, bob]\n  roster: [{', '.join(names)}]"
            if names
            else "db-oncall: [alice, bob]",
            "per_recipient_per_hour: 10000": limits,
        },
    )


def sms(app: AppProcess, slack: SlackStandIn, text: str) -> dict[str, Any]:
    """``/sms`` by the admin in CHANNEL; returns the request message it posted."""
    before = len([p for p in slack.posts(CHANNEL) if not p.get("thread_ts")])
    response = app.command(text, "U0ADMIN", CHANNEL, slack.response_url())
    assert response.status_code == 200 and not response.content, response.text
    return slack.wait_until(
        lambda: (
            (top := [p for p in slack.posts(CHANNEL) if not p.get("thread_ts")])
            and len(top) > before
            and top[-1]
        ),
        5,
        f"the request message of {text!r}",
    )


def outcome(slack: SlackStandIn, request: dict[str, Any], timeout: float = 10) -> str:
    """The final outcome reply in the request's thread."""
    reply = slack.wait_until(
        lambda: [
            r
            for r in slack.thread_replies(CHANNEL)
            if r.get("thread_ts") == request["_ts"] and "message_id" in str(r.get("text"))
        ],
        timeout,
        f"the outcome under {request['_ts']}",
    )[-1]
    return str(reply["text"])


def settle(seconds: float = 1.5) -> None:
    """Time for a call that must NOT happen (an overrun, a lookup) to show up."""
    time.sleep(seconds)


def test_two_processes_on_one_postgres_share_one_budget(
    start_app: StartApp,
    tmp_path: Path,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    postgres_url: str,
) -> None:
    """Each process alone would send its 3 texts at once; together they may send only 4
    in the minute, and the rest wait for it (counted in the progress, not failed)."""
    twochat.limit(4)
    config = budget_config(tmp_path, per_minute=4, roster=3)
    apps = [start_app(config, DATABASE_URL=postgres_url) for _ in range(2)]
    for app in apps:
        sms(app, slack, "roster hello")
    twochat.wait_for_sends(4, timeout=10)
    settle()
    assert twochat.refused == [], "the two processes together overran the account's limit"
    assert len(twochat.sends) == 4  # the other two wait for the minute to pass
    assert "stopped while sending" not in slack.all_text()
    progress = [p for p in slack.posts(CHANNEL) if str(p.get("text")).startswith(":hourglass")]
    assert progress and all("paced at 4/min" in str(p["text"]) for p in progress)
    for app in apps:
        app.kill()


def test_a_429_waits_for_budget_and_the_send_goes_once(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """2Chat allows less than the policy thinks: its 429s (with Retry-After) hold the send
    as long as it takes, its claim kept alive, so the sweeper never calls it cut off by a
    crash and offers no Retry that would text twice."""
    twochat.limit(1, window=6.0, retry_after=5)  # longer than a claim lasts unrenewed
    twochat.refusals_expected = True
    app = start_app(budget_config(tmp_path, per_minute=60), SWEEP_INTERVAL_SECONDS="0.2")
    request = sms(app, slack, "db-oncall hello")
    text = outcome(slack, request, timeout=20)
    assert "2/2 queued by 2Chat" in text, text
    assert twochat.refused, "2Chat did refuse the second send at first"
    assert sorted(send["to_number"] for send in twochat.sends) == [ALICE, BOB]
    everything = slack.all_text()
    assert "outcome unknown" not in everything and "stopped while sending" not in everything
    assert "Retry" not in everything


def test_sms_status_waits_its_turn_behind_texts(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """A lookup costs a credit like a send: with the minute's budget spent on texts it
    waits (the lowest priority) instead of calling 2Chat into a 429."""
    twochat.limit(3)
    app = start_app(budget_config(tmp_path, per_minute=3))
    first = sms(app, slack, "alice first")
    message_id = re.search(r"message_id `([^`]+)`", outcome(slack, first))
    assert message_id is not None
    sms(app, slack, "db-oncall second")
    twochat.wait_for_sends(3)
    response = app.command(f"status {message_id[1]}", "U0ADMIN", CHANNEL, slack.response_url())
    assert response.status_code == 200
    settle()
    assert twochat.api_calls("GET /open/sms/message") == []
    assert twochat.refused == []
    app.kill()


def test_reply_polling_keeps_its_floor_during_a_long_page(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """60 texts at 60 a minute take about a minute; a STOP sent during them is read within
    a few of the polls' turns (a tenth of the budget: one every 10 s), not after the last
    text."""
    twochat.limit(60)
    config = budget_config(tmp_path, per_minute=60, roster=60, replies="poll_interval: 0.5s")
    app = start_app(config)
    request = sms(app, slack, "roster all hands")
    twochat.wait_for_sends(2, timeout=5)
    twochat.inbound(roster_number(1), "STOP")
    started = time.monotonic()
    slack.wait_until(
        lambda: any(
            "has opted out" in str(slack.latest(p).get("text"))
            for p in slack.posts(CHANNEL)
            if p.get("thread_ts") == request["_ts"]
        ),
        35,
        "the STOP read while the page is being sent",
    )
    assert time.monotonic() - started < 35
    assert len(twochat.sends) < 50, "the STOP was read only once the page was out"
    assert twochat.refused == []
    app.kill()


def test_dry_run_calls_no_2chat_at_all_and_every_message_says_so(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """No limit read, no channel list, no poll, no lookup: a dry run spends no credit."""
    config = budget_config(tmp_path, per_minute=None, replies="poll_interval: 0.2s")
    app = start_app(config, TWOCHAT_DRY_RUN="1")
    request = sms(app, slack, "db-oncall dry hello")
    text = outcome(slack, request)
    assert "Dry run" in text and "not sent (dry run)" in text
    assert "queued by 2Chat" not in text
    message_id = re.search(r"message_id `([^`]+)`", text)
    assert message_id is not None
    app.command(f"status {message_id[1]}", "U0ADMIN", CHANNEL, slack.response_url())
    [answer] = slack.wait_for_response(1)
    assert "dry run: 2Chat was not asked" in str(answer.get("text")).replace("\\n", " ")
    settle(1.0)  # several poll intervals
    assert twochat.requests == [], "a dry run called 2Chat"
    app.kill()


def test_a_long_send_shows_its_pace_and_the_request_message_its_state(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.limit(600)
    twochat.respond(422, {"error": True, "error_message": "bad number"}, times=1)
    app = start_app(budget_config(tmp_path, per_minute=600, roster=8))
    request = sms(app, slack, "roster status check")
    slack.wait_until(
        lambda: "Done" in str(slack.latest(request).get("text")),
        10,
        "the request message's final state",
    )
    latest = str(slack.latest(request)["text"])
    assert latest.startswith(str(request["text"]))  # the request as it was, then its state
    assert latest.endswith(":warning: *Done: 1 failed* of 8")
    # The thread's outcome first: edits in a channel wait a second for each other.
    edits = [call.args for call in list(slack.calls) if call.method == "chat.update"]
    final = next(i for i, e in enumerate(edits) if "1 of 8 failed" in str(e.get("text")))
    done = next(i for i, e in enumerate(edits) if "Done" in str(e.get("text")))
    assert final < done, "the request message's state was edited before the thread's outcome"
    progress = [p for p in slack.posts(CHANNEL) if str(p.get("text")).startswith(":hourglass")]
    assert "paced at 600/min by the policy's limits, under a minute left" in progress[0]["text"]
    app.kill()


def test_pace_and_state_texts() -> None:
    assert pace_text(80, False) == "paced at 80/min by your 2Chat plan"
    assert pace_text(None, False) == ""
    assert time_left(80, 427) == "about 6 min left"
    assert time_left(30, 10) == "under a minute left"
    assert time_left(None, 10) == time_left(30, 0) == ""
    tally = Tally(500)
    for _ in range(73):
        tally.add("SMO1")
    assert tally.text(80, False) == (
        ":hourglass_flowing_sand: Sending… paced at 80/min by your 2Chat plan — 73 of 500 "
        "done, about 6 min left: 73 queued by 2Chat"
    )
    assert tally.text() == ":hourglass_flowing_sand: Sending… 73 of 500 done: 73 queued by 2Chat"
    assert status_line(5, 0, 0) == ":white_check_mark: *Done: all 5 sent*"
    assert status_line(5, 1, 2) == ":warning: *Done: 1 failed, 2 outcome unknown* of 5"


def test_a_429_makes_the_bridge_read_the_accounts_limit_again(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """The plan changed under the bridge (a trial's 30, here 3): its 429s make the bridge ask
    GET /open/info again, and pace under what 2Chat says now."""
    app = start_app(budget_config(tmp_path, per_minute=None, roster=5))
    app.wait_for_log("pacing 2Chat calls under 80 per minute")
    twochat.limit(3, window=2.0)
    twochat.refusals_expected = True
    sms(app, slack, "roster plan changed")
    app.wait_for_log("pacing 2Chat calls under 3 per minute", timeout=15)
    # The start's read and the one after the 429s (tried again while 2Chat still refused it).
    reads = twochat.api_calls("GET /open/info")
    assert len(reads) - twochat.refused.count("GET /open/info") == 2
    app.kill()


def test_the_startup_read_of_the_limit_takes_a_token_like_any_call(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """GET /open/info costs a call of the minute too: at a limit of 3, only 2 texts may
    follow it in that minute (before the limit is read, the lowest plan's paces it)."""
    twochat.limit(3)
    app = start_app(budget_config(tmp_path, per_minute=None, roster=3))
    app.wait_for_log("pacing 2Chat calls under 3 per minute")
    sms(app, slack, "roster after the read")
    twochat.wait_for_sends(2)
    settle()
    assert twochat.refused == [], "the read of the limit was not counted in the budget"
    assert len(twochat.sends) == 2
    assert twochat.api_calls("GET /open/info") == ["GET /open/info"]
    app.kill()


def test_a_limit_one_process_reads_anew_paces_every_process(
    start_app: StartApp,
    tmp_path: Path,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    postgres_url: str,
) -> None:
    """The plan is downgraded under two processes: the one whose texts meet the 429s reads
    the new limit, and the other paces by it from its next call, without a 429 of its own
    and without reading it again. The minute's 3 calls are spent, so nobody calls 2Chat."""
    config = budget_config(tmp_path, per_minute=None, roster=5)
    first, second = (start_app(config, DATABASE_URL=postgres_url) for _ in range(2))
    for app in (first, second):  # each read it itself (not only taken from the other)
        app.wait_for_log(f"{PACING} 80 per minute\n")
    twochat.limit(3, window=3.0, retry_after=3)  # a stand-in minute of 3 s
    twochat.refusals_expected = True
    sms(first, slack, "roster downgraded")
    first.wait_for_log(f"{PACING} 3 per minute\n", timeout=15)
    revealing, calls = len(twochat.refused), len(twochat.requests)
    assert revealing, "the first process did meet the new limit"
    sms(second, slack, "roster after the downgrade")
    settle(4.0)  # past the stand-in's window: a second burst would be answered, or refused
    assert twochat.refused[revealing:] == [], "a process overran the new limit"
    calls_of_second = second.log().count("bot.sms.twochat: 2Chat ")
    assert calls_of_second == 1, "the second process paced by the old limit"  # its start's
    # The first may have had starts granted while 2Chat answered its read; no more.
    assert len(twochat.requests) - calls <= 2
    second.wait_for_log(f"{PACING} 3 per minute, as another process read it")
    assert len(twochat.api_calls("GET /open/info")) == 3  # each start, and the first's 429
    for app in (first, second):
        app.kill()
