"""Escalation ladders end to end: the app runs for real against the Slack and 2Chat
stand-ins, pages the incident channel's ladder, climbs it from the store's timers, and stops
it at the first ack, whichever way it comes."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import StartApp
from tests.escalation.ladder_app import (
    ALICE,
    BOB,
    CAROL,
    SWEEP,
    board,
    board_says,
    buttons,
    click,
    code_in,
    ephemerals,
    escalation_id,
    ladder_config,
    page,
    react,
    sends_to,
    settle,
)
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn


def test_tier_two_is_texted_when_tier_one_does_not_ack_in_time(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(ladder_config(tmp_path, wait="1s"), **SWEEP)
    thread = page(app)
    first = twochat.wait_for_sends(2)
    tier_one_at = time.monotonic()
    assert {s["to_number"] for s in first} == {ALICE, BOB}
    code = code_in(str(first[0]["text"]))
    assert first[0]["text"] == first[1]["text"] == f"DB primary is down Reply {code} to ack"
    opened = board(slack, thread)
    assert f"reply code *{code}*" in opened["text"] and "Next: tier 2 (carol)" in opened["text"]
    assert buttons(opened) == ["ladder_ack", "ladder_escalate", "ladder_stop"]
    third = twochat.wait_for_sends(3, timeout=5)[2]
    assert time.monotonic() - tier_one_at >= 0.8  # not before tier 1's wait ran out
    assert third["to_number"] == CAROL and third["text"] == first[0]["text"]
    board_says(slack, thread, "tier 2 of 2")
    climbed = board_says(slack, thread, ": carol")["text"]
    assert "• Tier 1 at <!date^" in climbed and ": alice, bob" in climbed
    board_says(slack, thread, "Nobody acked", timeout=5)  # the last tier waited too
    assert len(twochat.sends) == 3
    assert slack.too_fast_updates("C0INCIDENT") == []  # the board kept Slack's pace


def test_an_sms_reply_code_stops_the_ladder_and_tells_the_others_once(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(ladder_config(tmp_path, wait="2s"), **SWEEP)
    thread = page(app)
    code = code_in(str(twochat.wait_for_sends(2)[0]["text"]))
    twochat.inbound(ALICE, code.lower())
    acked = board_says(slack, thread, "*Acked* by alice by SMS")
    assert buttons(acked) == []
    [told] = twochat.wait_for_sends(3)[2:]
    assert told["to_number"] == BOB
    assert str(told["text"]).startswith("Acked by alice at ") and "no action needed" in told["text"]
    settle(3)  # past tier 2's time
    assert sends_to(twochat, CAROL) == [] and len(twochat.sends) == 3


def test_the_ack_button_stops_the_ladder_once_and_a_second_ack_is_late(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(ladder_config(tmp_path, wait="2s"), **SWEEP)
    thread = page(app)
    twochat.wait_for_sends(2)
    ladder = escalation_id(board(slack, thread))
    click(app, "U0DEV2", "ladder_ack", ladder)
    board_says(slack, thread, "*Acked* by <@U0DEV2> with the Ack button")
    told = twochat.wait_for_sends(4)[2:]
    assert {s["to_number"] for s in told} == {ALICE, BOB}
    assert all(str(s["text"]).startswith("Acked by U0DEV2 at ") for s in told)
    click(app, "U0ADMIN", "ladder_ack", ladder)
    board_says(slack, thread, "Late ack: <@U0ADMIN>")
    slack.wait_until(lambda: ephemerals(slack, "U0ADMIN"), 5, "the late acker told")
    click(app, "U0NOBODY", "ladder_ack", ladder)
    slack.wait_until(lambda: ephemerals(slack, "U0NOBODY"), 5, "a stranger refused")
    assert "only people allowed to send SMS" in ephemerals(slack, "U0NOBODY")[0]
    settle(2.5)
    assert len(twochat.sends) == 4 and sends_to(twochat, CAROL) == []
    metrics = app.http.get("/metrics").text
    assert 'sms_bridge_pages_acked_total{via="button"} 1.0' in metrics
    assert "sms_bridge_pages_open 0.0" in metrics


def test_a_check_mark_on_the_board_acks_and_other_reactions_do_not(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(ladder_config(tmp_path, wait="2s", acked_sms=""), **SWEEP)
    thread = page(app)
    twochat.wait_for_sends(2)
    posted = board(slack, thread)
    react(app, "U0ADMIN", str(posted["_ts"]), reaction="eyes")
    react(app, "U0ADMIN", thread)  # on the page itself, not the board
    settle(0.5)
    assert "reply code" in board(slack, thread)["text"]
    react(app, "U0ADMIN", str(posted["_ts"]))
    board_says(slack, thread, "*Acked* by <@U0ADMIN> with :white_check_mark:")
    settle(3)
    assert len(twochat.sends) == 2  # acked_sms "" sends no "acked" SMS; no tier 2


def test_only_the_pager_or_an_approver_may_stop_or_escalate(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(ladder_config(tmp_path, wait="30s"), **SWEEP)
    thread = page(app, user="U0DEV1")
    twochat.wait_for_sends(2)
    ladder = escalation_id(board(slack, thread))
    click(app, "U0DEV2", "ladder_stop", ladder)
    slack.wait_until(lambda: ephemerals(slack, "U0DEV2"), 5, "the refusal")
    assert "only the person who paged or an approver" in ephemerals(slack, "U0DEV2")[0]
    click(app, "U0DEV1", "ladder_escalate", ladder)
    assert twochat.wait_for_sends(3)[2]["to_number"] == CAROL
    board_says(slack, thread, "escalated by <@U0DEV1>")
    click(app, "U0ADMIN", "ladder_escalate", ladder)  # an approver, but nobody is left
    slack.wait_until(lambda: ephemerals(slack, "U0ADMIN"), 5, "the last-tier refusal")
    assert "last tier" in ephemerals(slack, "U0ADMIN")[0]
    click(app, "U0ADMIN", "ladder_stop", ladder)
    stopped = board_says(slack, thread, "*Paging stopped* by <@U0ADMIN>")
    assert buttons(stopped) == []
    settle(0.5)
    assert len(twochat.sends) == 3  # stopping texts nobody


def test_two_open_pages_to_one_person_are_acked_by_their_own_codes(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(ladder_config(tmp_path, wait="30s", acked_sms=""), **SWEEP)
    first_thread = page(app, "disk full")
    first = code_in(twochat.wait_for_sends(2)[0]["text"])
    second_thread = page(app, "replica lag")
    second = code_in(twochat.wait_for_sends(4)[2]["text"])
    assert first != second
    twochat.inbound(ALICE, "ok")  # two open pages: a plain ack says which it is not
    slack.wait_until(
        lambda: any("reply a code" in str(p.get("text")) for p in slack.posts("C0INCIDENT")),
        5,
        "the hint to reply with a code",
    )
    assert "reply code" in board(slack, first_thread)["text"]
    twochat.inbound(ALICE, f"ack {second}")
    board_says(slack, second_thread, "*Acked* by alice")
    assert "reply code" in board(slack, first_thread)["text"]
    twochat.inbound(BOB, "OK")  # now one open page: a plain ack word acks it
    board_says(slack, first_thread, "*Acked* by bob")
