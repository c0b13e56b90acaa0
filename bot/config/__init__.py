"""Loading and validating the policy file, with errors located by file and line."""

from bot.config.loader import load_policy, parse_duration, summarize

__all__ = ["load_policy", "parse_duration", "summarize"]
