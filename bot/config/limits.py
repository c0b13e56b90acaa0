"""The ``limits`` section: rate limits on sends, each absent when it is not set."""

from __future__ import annotations

from yaml.nodes import Node

from bot.config.checker import Checker
from bot.core.model import Limits

LIMITS_KEYS: tuple[str, ...] = (
    "per_sender_per_hour",
    "per_recipient_per_hour",
    "requests_per_minute",
)


def read_limits(node: Node, checker: Checker) -> Limits:
    """Each limit is a whole number of at least 1; a limit left out is not enforced."""
    fields = checker.fields(node, "limits", LIMITS_KEYS) or {}
    values = {name: checker.integer(value, f"limits.{name}") for name, value in fields.items()}
    return Limits(**values)
