"""The pieces every message is built from: people, numbers, segments, times and errors,
and long lists cut to their first few so every message stays short."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.core.model import Recipient
from bot.core.segments import SegmentInfo
from bot.slack.render.escaping import E164, show_number, shown, untrusted

# How much of a long list a message names before saying "and N more".
SHOWN_NAMES = 5


SHOWN_ENTRIES = 20


MAX_ERROR_CHARS = 300


def listing(
    labels: Sequence[str], total: int | None = None, *, most: int = SHOWN_NAMES, sep: str = ", "
) -> str:
    """The first ``most`` labels and how many more: a roster of 500 never becomes a wall of
    names. ``total`` counts labels not passed in (a caller may render only the first few)."""
    total = len(labels) if total is None else total
    head = sep.join(labels[:most])
    more = total - min(most, len(labels))
    return f"{head} and {more} more" if more > 0 else head


def recipient_label(recipient: Recipient, masked: bool) -> str:
    number = show_number(recipient.number, masked)
    return f"{untrusted(recipient.name)} ({number})" if recipient.name else number


def short_label(recipient: Recipient, masked: bool) -> str:
    """A name alone when there is one, else the number (masked when numbers are)."""
    return untrusted(recipient.name) if recipient.name else show_number(recipient.number, masked)


def recipients_text(recipients: Sequence[Recipient], masked: bool) -> str:
    """Whom a text goes to: everyone when few, else the first few and how many more."""
    labels = [recipient_label(r, masked) for r in recipients[:SHOWN_NAMES]]
    return listing(labels, len(recipients))


def segments_label(info: SegmentInfo) -> str:
    plural = "" if info.segments == 1 else "s"
    return f"{info.segments} segment{plural}, {info.encoding}"


def target_label(target: str, masked: bool) -> str:
    """A senders entry's ``to`` item: a whole number is shown like every number."""
    return show_number(target, masked) if E164.fullmatch(target) else untrusted(target)


def slack_time(moment: datetime) -> str:
    """A time every reader sees in their own time zone (UTC as the fallback text)."""
    utc = moment.astimezone(UTC)
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{utc:%Y-%m-%d %H:%M} UTC>"


def error_text(error: str | None, masked: bool) -> str:
    """Why a send failed (often 2Chat's own words), escaped, masked and of sane length."""
    error = error or "failed"
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    return shown(error, masked)
