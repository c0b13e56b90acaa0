"""Durations as the policy file writes them ("30s", "10m", "1h30m"), read and shown.

Read strictly so that a typo never becomes "expire immediately" or "never expire"; shown in
the same form so a summary reads like the file.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"(?:[0-9]+[smhd])+")
_DURATION_PART_RE = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_HINT = "use e.g. 30s, 10m, 2h, 1d or 1h30m"
# A poll interval may be a fraction of a second ("0.5s"), which tests and demos use.
_FRACTIONAL_SECONDS_RE = re.compile(r"([0-9]+\.[0-9]+)s?")
# The longest duration any setting may have: ten years keeps every "now ± duration" the
# bridge computes (retention cutoffs, tier and approval deadlines) far inside what dates
# and databases can hold; no wait, window or retention needs more.
MAX_DURATION = timedelta(days=3650)


def shorten(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters, so one absurd value cannot swamp a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_duration(text: str | int) -> timedelta:
    """Parse "30s", "10m", "2h", "1d", "1h30m" or a bare number of seconds.

    Raises ``ValueError`` for zero, negative or malformed durations, so a typo never turns
    into "expire immediately" or "never expire".
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})")
    if isinstance(text, int):
        seconds = text
    else:
        value = text.strip()
        if value.startswith("-"):
            raise ValueError(f"{text!r} is negative: a duration must be longer than zero")
        if not (re.fullmatch(r"[0-9]+", value) or _DURATION_RE.fullmatch(value)):
            raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})")
        if len(value) > 30:  # int() refuses huge digit strings; no real duration is this long
            raise ValueError(f"{shorten(text)!r} is too long a duration")
        if value.isdigit():
            seconds = int(value)
        else:
            seconds = sum(
                int(amount) * _UNIT_SECONDS[unit]
                for amount, unit in _DURATION_PART_RE.findall(value)
            )
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return _bounded(text, seconds)


def _bounded(text: str | int, seconds: float) -> timedelta:
    """``seconds`` as a duration, refused past ``MAX_DURATION``."""
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            f"{shorten(str(text))!r} is too long a duration: at most "
            f"{format_duration(MAX_DURATION)} (10 years)"
        )
    return timedelta(seconds=seconds)


def parse_interval(text: str) -> timedelta:
    """A poll interval: any ``parse_duration`` form, or decimal seconds such as "0.5s"."""
    value = text.strip()
    match = _FRACTIONAL_SECONDS_RE.fullmatch(value)
    if match is None:
        return parse_duration(value)
    seconds = float(match.group(1))
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return _bounded(text, seconds)


def format_duration(duration: timedelta) -> str:
    """The inverse of ``parse_duration`` (e.g. "1h30m"), for summaries people read."""
    seconds = int(duration.total_seconds())
    parts: list[str] = []
    for unit, size in _UNIT_SECONDS.items():
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
