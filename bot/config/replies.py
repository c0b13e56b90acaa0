"""The optional ``replies`` section: polling 2Chat for SMS replies and relaying them to Slack."""

from __future__ import annotations

from datetime import timedelta

from yaml.nodes import Node

from bot.config.checker import Checker
from bot.config.durations import parse_interval
from bot.core.model import START_WORDS, STOP_WORDS, Replies, reply_keyword

REPLIES_KEYS: tuple[str, ...] = (
    "poll_interval",
    "window",
    "ack_words",
    "unknown_numbers_channel",
    "page_poll_interval",
)


def read_replies(node: Node, checker: Checker) -> Replies:
    """The section as written; absent means no polling (every poll costs 2Chat credits)."""
    fields = checker.fields(node, "replies", REPLIES_KEYS) or {}
    defaults = Replies()
    poll_interval = defaults.poll_interval
    if "poll_interval" in fields:
        poll_interval = _read_poll_interval(fields["poll_interval"], checker)
    window = defaults.window
    if "window" in fields:
        window = checker.duration(fields["window"], "replies.window") or window
    ack_words = defaults.ack_words
    if "ack_words" in fields:
        ack_words = _read_ack_words(fields["ack_words"], checker)
    channel = defaults.unknown_numbers_channel
    if "unknown_numbers_channel" in fields:
        channel = checker.channel_id(
            fields["unknown_numbers_channel"], "replies.unknown_numbers_channel"
        )
    page_poll_interval = defaults.page_poll_interval
    if "page_poll_interval" in fields:
        key = "replies.page_poll_interval"
        page_poll_interval = _read_poll_interval(fields["page_poll_interval"], checker, key)
        if poll_interval is None:
            checker.report(fields["page_poll_interval"], key, "needs replies.poll_interval too")
    return Replies(
        poll_interval=poll_interval,
        page_poll_interval=page_poll_interval,
        window=window,
        ack_words=ack_words,
        unknown_numbers_channel=channel,
    )


def _read_poll_interval(
    node: Node, checker: Checker, key: str = "replies.poll_interval"
) -> timedelta | None:
    """Like any duration, but fractions of a second are allowed too."""
    text = checker.string(node, key, "a duration such as 30s")
    if text is None:
        return Replies.poll_interval
    try:
        return parse_interval(text)
    except ValueError as exc:
        checker.report(node, key, str(exc))
        return Replies.poll_interval


def _read_ack_words(node: Node, checker: Checker) -> tuple[str, ...]:
    """Words (compared case-insensitively) that acknowledge a page; never STOP or START."""
    key = "replies.ack_words"
    items = checker.strings(
        node, key, "a word", empty="must list at least one word (leave it out for ack, ok)"
    )
    if items is None:
        return Replies.ack_words
    words: list[str] = []
    for text, item, item_key in items:
        word = reply_keyword(text)
        if not word:
            checker.report(item, item_key, "must not be empty")
        elif word in STOP_WORDS | START_WORDS:
            checker.report(item, item_key, f"{text!r} is an opt-out word and cannot acknowledge")
        elif word not in words:
            words.append(word)
    return tuple(words)
