"""Why something did not happen, as a user reads it.

``describe_error`` is the one place an exception becomes a user message; beside it the
refusals, and the people a send could not reach.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence

from bot.core.model import Recipient
from bot.errors import BridgeError
from bot.slack.render.escaping import shown
from bot.slack.render.labels import SHOWN_ENTRIES, listing

logger = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """Turn any exception into a message safe to show a user.

    Bridge errors carry their own safe text; anything else is a bug, logged with a reference
    the user can quote, and never shown raw (it might contain a secret).
    """
    if isinstance(exc, BridgeError):
        return exc.user_message
    reference = uuid.uuid4().hex[:8]
    logger.error("unexpected error (ref %s)", reference, exc_info=exc)
    return f"internal error in sms-bridge (reference {reference}); an operator can look it up"


def refusal_text(reason: str, masked: bool = False) -> str:
    """A refusal; the reason may quote what the user typed, so it is shown escaped."""
    return f":no_entry: Not sent: {shown(reason, masked)}. Nothing was sent to 2Chat."


def unposted_approval_text(channel: str) -> str:
    """A request that needs approval but could not be shown to the approvers."""
    return (
        f":no_entry: Not sent: the approval request could not be posted in <#{channel}>. "
        "Nothing was sent to 2Chat."
    )


def opted_out_reason(recipients: Iterable[Recipient]) -> str:
    """Why a send to these recipients is refused (plain data: shown through ``shown``)."""
    labels = [recipient.label for recipient in recipients]
    who = listing(labels)
    verb = "replied" if len(labels) == 1 else "each replied"
    pronoun = "they have" if len(labels) == 1 else "they have all"
    return f"{who} {verb} STOP; {pronoun} opted out"


def unreachable_text(
    mentions: Sequence[str],
    unread: Sequence[str] = (),
    skipped: Sequence[str] = (),
    masked: bool = False,
) -> str:
    """Roster members not texted: no number, or a Slack profile that could not be read
    (never called "no number"); and why whole rosters were skipped (``skipped``, shown
    escaped). ``<@U…>`` mentions of ids from Slack: shown unescaped."""
    parts = (("no phone number", mentions), ("Slack profile lookup failed", unread))
    people = [
        f":warning: Not reachable, {why}: {listing(list(who), most=SHOWN_ENTRIES)}. "
        "They were not texted."
        for why, who in parts
        if who
    ]
    rosters = [f":warning: Not texted: {shown(why, masked)}." for why in skipped]
    return "\n".join(people + rosters)
