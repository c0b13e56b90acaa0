"""SMS replies relayed into Slack, and a page's acknowledgement summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.core.model import Recipient
from bot.slack.render.escaping import quote, show_number, untrusted
from bot.slack.render.labels import SHOWN_ENTRIES, listing, recipient_label, slack_time


def sender_label(sender: Recipient, masked: bool) -> str:
    """Who sent an SMS reply, name first when the bridge knows it."""
    number = show_number(sender.number, masked)
    return f"*{untrusted(sender.name)}* ({number})" if sender.name else f"*{number}*"


def reply_text(sender: Recipient, text: str, masked: bool, note: str | None = None) -> str:
    """An SMS reply as posted in the thread of the request it answers; anyone can text the
    bridge, so the reply is shown escaped."""
    quoted = quote(untrusted(text))
    body = f":speech_balloon: SMS reply from {sender_label(sender, masked)}:\n{quoted}"
    return f"{body}\n{note}" if note else body


def unknown_reply_text(sender: Recipient, from_label: str, text: str, masked: bool) -> str:
    """An SMS from a number the bridge has not texted lately, for the configured channel."""
    return (
        f":speech_balloon: SMS to {from_label} from {sender_label(sender, masked)}, "
        f"a number the bridge has not texted lately:\n{quote(untrusted(text))}"
    )


def ack_summary_text(
    recipients: Sequence[Recipient], acks: Mapping[str, datetime], masked: bool
) -> str:
    """A page's acknowledgement summary: who replied an ack word and when, who has not
    (the first few of each for a big roster)."""
    done = [r for r in recipients if r.number in acks]
    waiting = [r for r in recipients if r.number not in acks]
    lines = [f":white_check_mark: *Acknowledged by {len(done)} of {len(recipients)}*"]
    lines += [
        f"• {recipient_label(r, masked)} at {slack_time(acks[r.number])}"
        for r in done[:SHOWN_ENTRIES]
    ]
    if len(done) > SHOWN_ENTRIES:
        lines.append(f"• and {len(done) - SHOWN_ENTRIES} more")
    if waiting:
        labels = [recipient_label(r, masked) for r in waiting[:SHOWN_ENTRIES]]
        lines.append(":hourglass: Not yet: " + listing(labels, len(waiting), most=SHOWN_ENTRIES))
    return "\n".join(lines)
