"""Asking Slack for a redelivery works only while an HTTP request is being served."""

from __future__ import annotations

from bot.slack.transport.redelivery import ask_for_redelivery, is_redelivery, served_over_http


def test_a_listener_asks_for_redelivery_only_over_http() -> None:
    assert ask_for_redelivery("database down") is False  # Socket Mode: nothing to answer
    with served_over_http() as asked:
        assert ask_for_redelivery("database down") is True
    assert asked == ["database down"]
    assert ask_for_redelivery("after the request") is False


def test_slacks_retry_header_marks_a_redelivery_whatever_its_case() -> None:
    assert is_redelivery({"x-slack-retry-num": ["1"]})
    assert is_redelivery({"X-Slack-Retry-Num": "2"})
    assert not is_redelivery({"x-slack-signature": ["v0=..."]})
