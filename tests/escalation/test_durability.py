"""Ladders survive what processes do: a crash mid-ladder loses no tier and repeats none,
and concurrent acks through two processes on one Postgres have exactly one winner."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.escalation import code_suffix
from bot.core.segments import analyze
from bot.store import NewRecipient, NewRequest, open_store
from tests.conftest import StartApp
from tests.escalation.ladder_app import (
    ALICE,
    BOB,
    CAROL,
    INCIDENT,
    SWEEP,
    board,
    board_says,
    click,
    code_in,
    escalation_id,
    eventually,
    ladder_config,
    page,
    sends_to,
    settle,
)
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

# A lease or claim nobody renews is taken over once 3 s old (connect + read + 2 s).
FAST_LADDER = {**SWEEP, "TWOCHAT_CONNECT_TIMEOUT": "0.5", "TWOCHAT_READ_TIMEOUT": "0.5"}


def test_a_crash_mid_ladder_resumes_without_losing_or_repeating_a_tier(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    config = ladder_config(tmp_path, wait="2s")
    database = f"sqlite:///{tmp_path / 'ladder.db'}"
    first = start_app(config, DATABASE_URL=database, **SWEEP)
    thread = page(first)
    tier_one = twochat.wait_for_sends(2)
    board(slack, thread)
    first.kill()  # kill -9 while tier 1 waits for its ack
    second = start_app(config, DATABASE_URL=database, **SWEEP)
    [tier_two] = twochat.wait_for_sends(3, timeout=6)[2:]
    assert tier_two["to_number"] == CAROL and tier_two["text"] == tier_one[0]["text"]
    board_says(slack, thread, "tier 2 of 2")
    settle(3)  # the ladder ran out: nothing more is sent, and tier 1 never again
    assert [sends_to(twochat, n) for n in (ALICE, BOB, CAROL)] == [[tier_one[0]["text"]]] * 3
    second.terminate()


def test_a_page_whose_process_died_before_its_ladder_started_still_escalates(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """What a process leaves when it dies between recording a page and starting its
    ladder: the page "sending" under a lease nobody renews, with its reply code, and no
    ladder. The process that takes it over starts the ladder too, so it climbs."""
    database = f"sqlite:///{tmp_path / 'ladder.db'}"
    store = open_store(database)
    try:
        text = "DB primary is down" + code_suffix(store.reserve_code())
        segments = analyze(text)
        store.record_request(
            NewRequest(
                kind="page",
                sender="U0DEV1",
                channel_id=INCIDENT,
                thread_ts="1810000000.999999",
                from_name="main",
                from_number="+17137157533",
                recipients=(NewRecipient(ALICE, "alice"), NewRecipient(BOB, "bob")),
                text=text,
                segments=segments.segments,
                encoding=segments.encoding,
            ),
            start=("a-process-that-died", timedelta(seconds=1)),
        )
    finally:
        store.close()
    app = start_app(
        ladder_config(tmp_path, wait="1s"),
        DATABASE_URL=database,
        TWOCHAT_CONNECT_TIMEOUT="0.5",
        TWOCHAT_READ_TIMEOUT="0.5",
        **SWEEP,
    )
    board(slack, "1810000000.999999", timeout=15)  # taken over once its lease is 3 s old
    board_says(slack, "1810000000.999999", "tier 1 of 2")
    [tier_two] = twochat.wait_for_sends(3, timeout=10)[2:]
    assert tier_two["to_number"] == CAROL and tier_two["text"] == text
    assert [sends_to(twochat, n) for n in (ALICE, BOB)] == [[text]] * 2
    app.terminate()


def test_concurrent_acks_through_two_processes_have_one_winner_and_one_broadcast(
    start_app: StartApp,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    config = ladder_config(tmp_path, wait="30s")
    apps = [start_app(config, DATABASE_URL=postgres_url, **SWEEP) for _ in range(2)]
    thread = page(apps[0])
    code = code_in(twochat.wait_for_sends(2)[0]["text"])
    ladder = escalation_id(board(slack, thread))
    acks: list[Callable[[], None]] = [
        lambda: click(apps[0], "U0DEV2", "ladder_ack", ladder),
        lambda: click(apps[1], "U0ADMIN", "ladder_ack", ladder),
        lambda: twochat.inbound(ALICE, code),
    ]
    threads = [threading.Thread(target=ack) for ack in acks]
    for thread_ in threads:
        thread_.start()
    for thread_ in threads:
        thread_.join(10)
    store = open_store(postgres_url)
    try:

        def acked_by(user: str) -> bool:
            return any(step.actor == user for step in store.escalation_steps(ladder))

        eventually(lambda: acked_by("U0DEV2") and acked_by("U0ADMIN"), 10, "both clicks")
        eventually(lambda: acked_by(ALICE), 10, "alice's reply")
        steps = [step.kind for step in store.escalation_steps(ladder)]
        escalation = store.get_escalation(ladder)
    finally:
        store.close()
    # Alice's reply is read even when the "acked" SMS to her went out after it: three acks
    # recorded, exactly one winner.
    assert steps.count("ack") == 1 and steps.count("late_ack") == 2
    assert escalation is not None and escalation.state == "acked"
    expected = {BOB} if escalation.acked_by == ALICE else {ALICE, BOB}
    twochat.wait_for_sends(2 + len(expected), timeout=15)
    settle(1.5)
    told = [s for s in list(twochat.sends) if str(s["text"]).startswith("Acked by")]
    assert sorted(s["to_number"] for s in told) == sorted(expected)  # one broadcast, once
    assert sends_to(twochat, CAROL) == []
    for app in apps:  # their pollers would read the next tests' SMS from the same stand-in
        app.terminate()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_crash_while_a_tier_is_sent_starts_no_second_ladder(
    start_app: StartApp,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    """kill -9 while tier 2's SMS is with 2Chat: the process that takes the tier's request
    over reports that send "unknown" and must not take the tier's request (which carries the
    page's reply code) for a new page: no second ladder, nobody texted twice."""
    database = (
        request.getfixturevalue("postgres_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'ladder.db'}"
    )
    config = ladder_config(tmp_path, wait="1s")
    first = start_app(config, DATABASE_URL=database, **FAST_LADDER)
    thread = page(first)
    code = code_in(twochat.wait_for_sends(2)[0]["text"])
    twochat.hang()  # tier 2's SMS reaches 2Chat and is never answered
    [tier_two] = twochat.wait_for_sends(3, timeout=6)[2:]
    assert tier_two["to_number"] == CAROL
    first.kill()
    twochat.reset()  # 2Chat answers again; what it got before is in tier_two
    second = start_app(config, DATABASE_URL=database, **FAST_LADDER)
    slack.wait_until(
        lambda: any(
            "outcome unknown" in str(slack.latest(post).get("text"))
            for post in slack.posts(INCIDENT)
            if post.get("thread_ts") == thread
        ),
        15,
        "tier 2's send reported as outcome unknown",
    )
    settle(3)  # a second ladder would have texted its next tier by now
    assert twochat.sends == []
    store = open_store(database)
    try:
        ladders = store.escalations_with_code(code, CAROL)
    finally:
        store.close()
    assert len(ladders) == 1 and ladders[0].state == "exhausted"
    assert second.terminate() == 0


def test_a_refused_page_gives_its_reply_code_back(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """Codes are kept from reuse for 72 hours once issued; a page refused by the rate limit
    never texted its code, so keeping it would let refusals use up every code."""
    config = ladder_config(tmp_path, wait="30s")
    config.write_text(
        config.read_text().replace("per_sender_per_hour: 10000", "per_sender_per_hour: 2")
    )
    database = f"sqlite:///{tmp_path / 'ladder.db'}"
    app = start_app(config, DATABASE_URL=database)
    page(app)
    twochat.wait_for_sends(2)
    for n in range(3):
        page(app, f"refused page {n}")
    slack.wait_until(lambda: str(slack.calls).count("rate limit") >= 3, 5, "three pages refused")
    with contextlib.closing(sqlite3.connect(tmp_path / "ladder.db")) as conn:
        codes = conn.execute("SELECT code FROM escalation_codes").fetchall()
    assert len(codes) == 1
    assert len(twochat.sends) == 2
    app.terminate()


def test_a_sweep_step_that_fails_stops_no_other_step(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """A pending approval whose deadline the database cannot read (a row written by hand)
    breaks approval expiry on every sweep; tiers must still fire."""
    database = tmp_path / "ladder.db"
    app = start_app(
        ladder_config(tmp_path, wait="1s"), DATABASE_URL=f"sqlite:///{database}", **SWEEP
    )
    response = app.command("alice please call me", "U0INTERN", "C0GENERAL", slack.response_url())
    assert response.status_code == 200 and not response.content
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        eventually(
            lambda: (
                conn.execute(
                    "UPDATE requests SET expires_at = '0001-not-a-time' "
                    "WHERE state = 'pending_approval'"
                ).rowcount
            ),
            5,
            "the approval recorded",
        )
    settle(0.5)  # a few sweeps, each failing to read that deadline
    page(app)
    [tier_two] = twochat.wait_for_sends(3, timeout=6)[2:]
    assert tier_two["to_number"] == CAROL
    assert app.terminate() == 0


def test_a_page_whose_ladder_the_database_failed_to_start_still_escalates(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """The database fails just as a recorded page's ladder is to start (here: a trigger
    on the ladders' table that fails like a lost file): the page still goes out, and once
    the database answers again the sweeper starts its ladder, so tier 2 is texted and the
    page's reply code acks it (late, as the ladder ran out by then). Found by the fault
    simulation (invariant I8)."""
    database = tmp_path / "ladder.db"
    app = start_app(
        ladder_config(tmp_path, wait="1s"), DATABASE_URL=f"sqlite:///{database}", **FAST_LADDER
    )
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute(
            "CREATE TRIGGER ladders_fail BEFORE INSERT ON escalations "
            "BEGIN SELECT * FROM the_database_failed; END"
        )
    thread = page(app)
    [first, _] = twochat.wait_for_sends(2)  # tier 1 goes out without its ladder
    app.wait_for_log("ladder not started yet")
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("DROP TRIGGER ladders_fail")
    [tier_two] = twochat.wait_for_sends(3, timeout=15)[2:]
    assert tier_two["to_number"] == CAROL and tier_two["text"] == first["text"]
    app.wait_for_log("its ladder started late")
    board_says(slack, thread, "tier 2 of 2")
    assert [len(sends_to(twochat, number)) for number in (ALICE, BOB, CAROL)] == [1, 1, 1]
    twochat.inbound(CAROL, code_in(str(first["text"])))  # late: a tier's wait is 1 s
    slack.wait_until(
        lambda: [p for p in slack.posts(INCIDENT) if "carol acked page" in str(p.get("text"))],
        5,
        "the code acking the page",
    )
