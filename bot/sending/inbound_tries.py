"""How often the poller tries to act on one inbound SMS before it gives up on it.

An SMS is recorded pending, acted on, then marked done (``bot.sending.replies``). When the
action keeps failing (a bug, a row the database refuses), trying it on every poll would cost
every poll for ever. So each failure puts the next try off (twice as many polls each time),
and after ``MAX_TRIES`` the SMS is given up: an error in the log and a note where its reply
would have been posted. A database outage counts nothing: the failure cannot be recorded,
and the whole poll backs off instead.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.core.phone import mask
from bot.errors import BridgeError
from bot.store import PendingInbound

logger = logging.getLogger(__name__)

# Five pauses of 2, 4, 8, 16 and 32 polls (each at most BACKOFF_CAP) before the last try:
# about a quarter of an hour at a 15 s poll interval.
MAX_TRIES = 6
BACKOFF_CAP = timedelta(minutes=5)
# The pause unit when the policy has no poll interval (replies just turned off).
DEFAULT_POLL = timedelta(seconds=30)


def next_try(tries: int, poll: timedelta | None, now: datetime) -> datetime | None:
    """When to try an SMS again after its ``tries``-th failure; None: give it up."""
    if tries >= MAX_TRIES:
        return None
    return now + min((poll or DEFAULT_POLL) * (1 << tries), BACKOFF_CAP)


def given_up_note(kind: str, tries: int, error: object) -> str:
    """What the thread (or the unknown-numbers channel) is told about a given-up SMS."""
    effect = {"stop": "an opt-out", "start": "an opt-in", "ack": "an acknowledgement"}
    meant = effect.get(kind, "a reply")
    return (
        f":warning: The bridge could not act on this SMS ({meant}) after {tries} tries and "
        f"gave up: {error}. It may not have taken effect: check and act on it by hand."
    )


def log_failure(
    pending: PendingInbound, tries: int, retry_at: datetime | None, exc: Exception
) -> None:
    """One line for a failed try: a warning while it is tried again, an error when given
    up; with the traceback of a bug (not of a 2Chat, Slack or database failure)."""
    who, traced = mask(pending.contact), not isinstance(exc, BridgeError)
    if retry_at is not None:
        logger.warning(
            "the SMS from %s could not be acted on (try %d of %d; next from %s UTC): %s",
            *(who, tries, MAX_TRIES, f"{retry_at:%H:%M:%S}", exc),
            exc_info=traced,
        )
        return
    logger.error(
        "gave up on the SMS %s from %s (%s) after %d tries: %s",
        *(pending.uuid, who, pending.kind, tries, exc),
        exc_info=traced,
    )
