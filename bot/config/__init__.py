"""Loading and validating the policy file, with errors located by file and line."""

from bot.config.durations import parse_duration
from bot.config.loader import load_policy, load_policy_text
from bot.config.summary import summarize

__all__ = ["load_policy", "load_policy_text", "parse_duration", "summarize"]
