"""A send as its channel sees it: the request message, then the thread reply with each
recipient's outcome (a headline with the counts first, only failures for a big send)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.policy import AUTO_PAGE_PREFIX, SendPlan
from bot.sending.ports import Outcome
from bot.slack.render.escaping import quote, show_number, untrusted
from bot.slack.render.labels import (
    SHOWN_NAMES,
    error_text,
    recipient_label,
    recipients_text,
    segments_label,
)

# An outcome lists at most this many lines: every recipient of a send to this many or
# fewer, else only failures (the first this many; ``/sms status <request id>`` has them all).
LISTED_OUTCOMES = 25


def request_text(plan: SendPlan, masked: bool) -> str:
    """The request message posted in the channel: who sends, from where and what first;
    whom to last, summarised for a big roster (the count, the first few, "and N more")."""
    sender_number = show_number(plan.from_number, masked)
    auto = plan.sender.startswith(AUTO_PAGE_PREFIX)
    who = "The auto_page rule" if auto else f"<@{plan.sender}>"
    sending = (
        f"from {untrusted(plan.from_name)} ({sender_number}) — {segments_label(plan.segments)}"
    )
    quoted = quote(untrusted(plan.text))
    to = recipients_text(plan.recipients, masked)
    if len(plan.recipients) <= SHOWN_NAMES:
        return f":outbox_tray: {who} is texting {to} {sending}\n{quoted}"
    count = len(plan.recipients)
    return f":outbox_tray: {who} is texting {count} recipients {sending}\n{quoted}\n*To:* {to}"


def outcome_line(outcome: Outcome, masked: bool) -> str:
    label = recipient_label(outcome.recipient, masked)
    if outcome.pending:
        return f":hourglass: {label}: sending…"
    if outcome.ok:
        message_id = untrusted(str(outcome.message_id))
        return f":white_check_mark: {label}: queued by 2Chat, message_id `{message_id}`"
    return f":x: {label}: {error_text(outcome.error, masked)}"


def _headline(outcomes: Sequence[Outcome], failed: int, elapsed: float | None) -> str | None:
    """Counts first: how far a send is, or how it ended (for more than one recipient)."""
    total = len(outcomes)
    pending = sum(1 for outcome in outcomes if outcome.pending)
    if pending:
        so_far = f", {failed} failed" if failed else ""
        return f":hourglass_flowing_sand: Sending… {total - pending} of {total} done{so_far}"
    if total == 1:
        return None
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    headline = f"*{failed} of {total} failed*" if failed else "*all sent*"
    return f"{headline} — {total - failed}/{total} queued by 2Chat{took}"


def outcome_text(
    outcomes: Sequence[Outcome],
    masked: bool,
    elapsed: float | None = None,
    request_id: str | None = None,
) -> str:
    """The thread reply: a headline with the counts, then a line per recipient for a small
    send, or only the failures for a big one (the first few; ``/sms status <request_id>``
    lists them all), so a 500-person page stays a short message."""
    failed = [o for o in outcomes if not o.ok and not o.pending]
    headline = _headline(outcomes, len(failed), elapsed)
    listed = list(outcomes) if len(outcomes) <= LISTED_OUTCOMES else failed
    lines = [headline] if headline else []
    lines += [outcome_line(outcome, masked) for outcome in listed[:LISTED_OUTCOMES]]
    hidden = len(listed) - LISTED_OUTCOMES
    if hidden > 0:
        where = f": `/sms status {request_id}` lists them all" if request_id else ""
        lines.append(f"…and {hidden} more failed{where}")
    return "\n".join(lines)
