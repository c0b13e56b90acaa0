"""The optional ``retention`` section: how long finished requests and their sends are kept."""

from __future__ import annotations

from datetime import timedelta

from yaml.nodes import Node

from bot.config.checker import Checker
from bot.config.durations import format_duration
from bot.core.model import Replies, Retention

RETENTION_KEYS: tuple[str, ...] = ("keep",)
# Rate limits look back an hour and the sweeper reports on sends for a while after: a day is
# the least that leaves every feature the history it reads.
MIN_KEEP = timedelta(days=1)


def read_retention(node: Node, checker: Checker, replies: Replies) -> Retention:
    """``keep`` (default 90d) is at least a day and at least ``replies.window``: a reply is
    matched to the send it answers, so that send must still be there."""
    fields = checker.fields(node, "retention", RETENTION_KEYS) or {}
    if "keep" not in fields:
        return Retention()
    keep = checker.duration(fields["keep"], "retention.keep")
    if keep is None:
        return Retention()
    if keep < MIN_KEEP:
        checker.report(
            fields["keep"], "retention.keep", f"must be at least {format_duration(MIN_KEEP)}"
        )
    elif keep < replies.window:
        checker.report(
            fields["keep"],
            "retention.keep",
            f"must be at least replies.window ({format_duration(replies.window)}), or replies "
            "to the oldest sends could no longer be matched to them",
        )
    return Retention(keep=keep)
