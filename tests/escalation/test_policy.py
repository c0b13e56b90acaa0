"""The ``escalations`` section and the ladders' pure parts: what loads, what is refused
(each problem located, with "did you mean"), reply codes and the order of the rungs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import load_policy_text
from bot.core.escalation import Escalation, Tier, acked_text, code_of, free_codes, reply_code
from tests.config.helpers import BASE, problems_of

SENDERS = "groups:\n  oncall: [alice, bob]\nsenders:\n  - users: [U0ADMIN]\n    to: ['*']\n"
LADDER = """\
escalations:
  db:
    tiers:
      - page: oncall
        wait: 5m
      - page: [bob, "+447700900999"]
        wait: 0.5s
      - page: alice
    repeat: 1
    acked_sms: "Handled by {name} ({time})"
channels:
  C0INCIDENT: {page: oncall, escalation: db}
"""


def test_a_ladder_loads_with_its_tiers_repeat_and_acked_sms() -> None:
    policy = load_policy_text(BASE + SENDERS + LADDER, "t.yaml")
    ladder = policy.escalations["db"]
    assert [tier.page for tier in ladder.tiers] == [
        ("oncall",),
        ("bob", "+447700900999"),
        ("alice",),
    ]
    assert [tier.wait for tier in ladder.tiers] == [
        timedelta(minutes=5),
        timedelta(seconds=0.5),
        None,
    ]
    assert ladder.repeat == 1 and ladder.acked_sms == "Handled by {name} ({time})"
    assert policy.channels["C0INCIDENT"].escalation == "db"


def test_ladder_mistakes_are_located_with_did_you_mean() -> None:
    bad = """\
escalations:
  db:
    tiers:
      - page: oncal
        wait: 5x
      - page: [alcie]
      - page: bob
    repeat: -1
    acked_sms: "by {nmae}"
  empty: {}
channels:
  C0INCIDENT: {page: oncall, escalation: dbb}
  C0OTHER: {page: oncall, escalation: empty}
"""
    assert problems_of(BASE + SENDERS + bad) == [
        "t.yaml:15: escalations.db.tiers[0].page: unknown group or contact 'oncal' (not a "
        "group, a contact or a number; did you mean 'oncall'?)",
        "t.yaml:16: escalations.db.tiers[0].wait: '5x' is not a duration (use e.g. 30s, 10m, "
        "2h, 1d or 1h30m)",
        "t.yaml:17: escalations.db.tiers[1].wait: missing (how long before the next tier)",
        "t.yaml:17: escalations.db.tiers[1].page[0]: unknown group or contact 'alcie' (not a "
        "group, a contact or a number; did you mean 'alice'?)",
        "t.yaml:19: escalations.db.repeat: expected a whole number of at least 0, got the "
        "number -1",
        "t.yaml:20: escalations.db.acked_sms: unknown field {nmae} (did you mean 'name'?)",
        "t.yaml:21: escalations.empty.tiers: missing (the list of tiers to page in turn)",
        "t.yaml:23: channels.C0INCIDENT.escalation: unknown escalation 'dbb' (did you mean 'db'?)",
    ]


def test_page_poll_interval_needs_the_poller() -> None:
    text = BASE + SENDERS + "replies:\n  page_poll_interval: 15s\n"
    assert problems_of(text) == [
        "t.yaml:13: replies.page_poll_interval: needs replies.poll_interval too"
    ]
    fine = load_policy_text(
        BASE + SENDERS + "replies:\n  poll_interval: 60s\n  page_poll_interval: 15s\n"
    )
    assert fine.replies.page_poll_interval == timedelta(seconds=15)


def test_rungs_climb_then_repeat_then_end() -> None:
    ladder = Escalation(
        tiers=(Tier(("a",), timedelta(minutes=5)), Tier(("b",), timedelta(minutes=10))),
        repeat=1,
    )
    assert ladder.step_after(0, 0) == (1, 0)
    assert ladder.step_after(1, 0) == (0, 1)
    assert ladder.step_after(1, 1) is None
    assert ladder.wait_after(1) == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("keyword", "code"),
    [("a7", "A7"), ("ack a7", "A7"), ("a7 ok", "A7"), ("b123", "B123"), ("ok", None)],
)
def test_reply_codes_are_read_from_short_replies_only(keyword: str, code: str | None) -> None:
    assert reply_code(keyword, ("ack", "ok")) == code


def test_reply_codes_in_sentences_or_two_codes_ack_nothing() -> None:
    assert reply_code("i am on a7 now", ("ack", "ok")) is None
    assert reply_code("a7 b8", ("ack", "ok")) is None
    assert reply_code("i1", ("ack", "ok")) is None  # I and O are never in a code


def test_codes_are_shortest_first_and_skip_busy_ones() -> None:
    codes = free_codes({"A7"})
    first = [next(codes) for _ in range(239)]
    assert "A7" not in first and len(set(first)) == 239 and all(len(c) == 2 for c in first)
    assert len(next(codes)) == 3
    assert code_of("DB down Reply A7 to ack") == "A7" and code_of("Reply A7 to ack!") is None


def test_the_acked_sms_names_who_and_when() -> None:
    at = datetime(2026, 1, 2, 2, 14, tzinfo=UTC)
    assert acked_text("Acked by {name} at {time}", "alice", at) == "Acked by alice at 02:14 UTC"
