"""What 2Chat's answers mean: each documented status, the error shapes its bodies use, and
the wording a user reads. Pure: the client applies it to what it received."""

from __future__ import annotations

import re
from typing import Any

EXCERPT_CHARS = 120

# status → (what it means for a user, whether retrying later may help), for the statuses
# 2Chat documents for its SMS endpoints.
STATUS_MEANINGS: dict[int, tuple[str, bool]] = {
    400: ("2Chat rejected the request as bad JSON", False),
    401: ("2Chat rejected the API key", False),
    402: ("2Chat account has no credits left or its trial has expired", False),
    403: (
        "2Chat refused the request as forbidden (is the from number one of the account's "
        "SMS-enabled numbers?)",
        False,
    ),
    404: ("2Chat says the resource was not found", False),
    406: ("2Chat does not support this operation", False),
    422: ("2Chat says the request is malformed (numbers must be E.164)", False),
    429: ("2Chat rate limit reached; try again shortly", True),
    486: ("2Chat says the number is busy; try again shortly", True),
    500: ("2Chat server error", False),
    502: ("2Chat server error (bad gateway)", False),
    503: ("2Chat is temporarily unavailable", True),
    504: ("2Chat gateway timed out", True),
}

_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = _SPACES.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def excerpt(text: str) -> str:
    """A short single-line excerpt of a body (HTML tags dropped), for error messages."""
    return one_line(_TAGS.sub(" ", text), EXCERPT_CHARS)


def status_meaning(status: int) -> tuple[str | None, bool]:
    """What a status means (None if 2Chat does not document it) and whether to retry.

    Unknown 5xx are server errors whose effect is unknown, so they are not temporary.
    """
    if status in STATUS_MEANINGS:
        return STATUS_MEANINGS[status]
    if 500 <= status < 600:
        return "2Chat server error", False
    return None, False


def error_text(body: Any) -> str | None:
    """2Chat's own explanation, from whichever of its error shapes was used."""
    if not isinstance(body, dict):
        return None
    for key in ("error_message", "message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def has_error_flag(body: Any) -> bool:
    """True when a JSON body says it failed, whatever the HTTP status was."""
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    return (
        error is True
        or (isinstance(error, str) and bool(error.strip()))
        or (body.get("success") is False)
    )


def may_have_sent(status: int, temporary: bool) -> bool:
    """Whether a send answered ``status`` may have been queued all the same: a 2xx we could
    not read, or a server error that is not a documented "try again" (those did nothing)."""
    return 200 <= status < 300 or (500 <= status < 600 and not temporary)


def maybe_sent(unknown: bool) -> str:
    """The warning an uncertain send's message ends with."""
    return "; the message may or may not have been sent" if unknown else ""
