"""Retry-After, read once for every service that sends it (Slack, 2Chat).

RFC 9110 §10.2.3 allows a delay in seconds or an HTTP date. Both services send seconds
when they send it at all; anything else (a date, nonsense, a negative or absurd delay) is
read as "not said", and the caller picks its own pause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Longer than this is not a pause but a broken header: ignored.
LONGEST_SECONDS = 3600.0


def retry_after_seconds(value: object) -> float | None:
    """Seconds from a Retry-After value in its delay form; None when it says nothing usable.
    A list (some HTTP clients keep every value of a header) is read by its first value."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds <= LONGEST_SECONDS else None


def header_retry_after(headers: Mapping[str, Any]) -> float | None:
    """Retry-After from a header mapping whose name case varies by client."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            return retry_after_seconds(value)
    return None
