"""Asking Slack to deliver an event again: a non-2xx answer to an Events API request.

Slack retries an event its request URL did not take (no answer within 3 s, a connection
failure, any status but 2xx) three times: at once, after a minute and after five minutes,
marking each with ``X-Slack-Retry-Num`` (https://api.slack.com/apis/events-api#retries).
A listener that cannot keep an event safe (the database is down) asks for that here; the
HTTP endpoint then answers 503 instead of Bolt's 200. Socket Mode has no such answer, so
there the ask does nothing and the caller keeps the event in memory alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

# The reasons given while the HTTP request being served was dispatched; None outside one.
_ASKED: ContextVar[list[str] | None] = ContextVar("redelivery_asked", default=None)


@contextmanager
def served_over_http() -> Iterator[list[str]]:
    """Around one HTTP request's dispatch: the reasons any listener asked for redelivery
    (empty: answer as Bolt does). A list, so a listener run in a copied context still
    reaches it."""
    reasons: list[str] = []
    token = _ASKED.set(reasons)
    try:
        yield reasons
    finally:
        _ASKED.reset(token)


def ask_for_redelivery(why: str) -> bool:
    """Have Slack deliver the event being served again; False where it cannot (Socket
    Mode, or outside a request)."""
    reasons = _ASKED.get()
    if reasons is None:
        return False
    reasons.append(why)
    return True


def is_redelivery(headers: Mapping[str, object]) -> bool:
    """Whether Slack marked this delivery as a retry of an earlier one."""
    return any(name.lower() == "x-slack-retry-num" for name in headers)
