"""Alerts read from Slack's untrusted messages: cleaned text, and auto_page patterns matched
in linear time so no pattern can stall the bridge."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.config import load_policy_text
from bot.core.alerts import auto_page_text, message_text, pattern_matches, text_field
from bot.core.commands import clean_text, parse_sms_command
from tests.config.helpers import BASE, problems_of

EVIL = "^(a+)+$"


def auto_page_policy(match: str) -> str:
    return (
        BASE + "groups: {g: [alice]}\nchannels:\n  C0INC:\n    page: g\n    auto_page:\n"
        f"      match: '{match}'\n"
    )


def new_message(text: str) -> dict[str, Any]:
    return {"type": "message", "user": "U0X", "text": text, "ts": "1.1", "channel": "C0INC"}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("db\x00 down", "db down"),
        ("a\x01\x07\x1b[31mb\x7f", "a[31mb"),
        ("keeps\ttabs\nand lines", "keeps\ttabs\nand lines"),
        ("half \ud800 pair \udfff", "half \ufffd pair \ufffd"),
        ("emoji 😀 stays", "emoji 😀 stays"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    clean.encode("utf-8")  # storable and sendable


def test_sms_text_and_alert_text_arrive_cleaned() -> None:
    assert text_field("x\x00\ud800") == "x\ufffd"
    message = {"text": "", "attachments": [{"text": "disk\x00 full \udc00"}]}
    assert message_text(message) == "disk full \ufffd"
    assert parse_sms_command("alice hi\x00 there").text == "hi there"


def test_a_catastrophic_pattern_returns_quickly() -> None:
    policy = load_policy_text(auto_page_policy(EVIL), "t.yaml")
    started = time.monotonic()
    assert auto_page_text(policy, new_message("a" * 40 + "!"), None, None) is None
    assert time.monotonic() - started < 1.0  # Python's re would take hours on this
    assert auto_page_text(policy, new_message("a" * 28), None, None) == "a" * 28


def test_shipped_style_patterns_still_match() -> None:
    policy = load_policy_text(auto_page_policy("(?i)\\b(SEV1|CRITICAL)\\b"), "t.yaml")
    assert auto_page_text(policy, new_message("db is Critical now"), None, None)
    assert auto_page_text(policy, new_message("criticality"), None, None) is None
    assert auto_page_text(policy, new_message("SEV1 \ud800"), None, None) == "SEV1 \ufffd"
    [rule] = policy.channels.values()
    assert rule.auto_page is not None
    assert pattern_matches(rule.auto_page.match, "sev1")


def test_a_pattern_re2_cannot_run_is_reported_at_its_line() -> None:
    [problem] = problems_of(auto_page_policy("CRITICAL(?!-test)"))
    assert problem.startswith("t.yaml:12: channels.C0INC.auto_page.match: ")
    assert "lookahead, lookbehind and backreferences are not supported" in problem
