"""``/sms help`` and App Home's summary: how to send, what this user may send, and who
has opted out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.core.model import WILDCARD, Policy, Recipient, SenderRule
from bot.core.policy import allowed_from_names
from bot.slack.render.escaping import untrusted
from bot.slack.render.labels import (
    SHOWN_ENTRIES,
    SHOWN_NAMES,
    listing,
    recipient_label,
    short_label,
    slack_time,
    target_label,
)

USAGE = (
    "*Send an SMS:* `/sms <to> <text>` — `<to>` is a contact, a group, a number "
    "(+447700900123, or national like 07700900123) or several joined by commas.\n"
    "`/sms from:<name> <to> <text>` picks the sending number. "
    "`/sms` alone opens a form with a live segment count. `/sms help` shows this.\n"
    "`/sms status <message_id>` shows what the bridge and 2Chat know of one SMS."
)


STATUS_USAGE = (
    "Usage: `/sms status <message_id>` — the id from a :white_check_mark: line in a thread, "
    'or a text\'s id from a "more failed" line to list all its failures.'
)


def permissions_text(policy: Policy, rule: SenderRule | None) -> str:
    """What a user may send to and from (their ``senders`` entry, listed by id or through a
    user group), for ``/sms help`` and App Home."""
    if rule is None:
        return "You are not in the SMS allowlist, so you cannot send. Ask an admin to add you."
    masked = policy.defaults.mask_numbers
    targets = (
        "anyone (except US numbers)"
        if WILDCARD in rule.to
        else listing([target_label(target, masked) for target in rule.to], most=SHOWN_ENTRIES)
    )
    from_names = [untrusted(name) for name in allowed_from_names(policy, rule)]
    lines = [
        f"You may text: {targets}.",
        f"You may send from: {listing(from_names, most=SHOWN_ENTRIES)}.",
    ]
    if rule.approval_required:
        lines.append("Your texts need an approver's OK before they are sent.")
    if policy.groups:
        groups = [
            f"{untrusted(name)} ({len(members)}): "
            + listing([short_label(m, masked) for m in members[:SHOWN_NAMES]], len(members))
            for name, members in policy.groups.items()
        ]
        lines.append(f"Groups — {listing(groups, most=SHOWN_ENTRIES, sep='; ')}.")
    lines.append(f"Texts longer than {policy.defaults.max_segments} segments are refused.")
    return "\n".join(lines)


def help_text(
    policy: Policy, rule: SenderRule | None, opted_out: Sequence[tuple[str, datetime]] = ()
) -> str:
    """``/sms help``: usage, what this user may send, and who has opted out (replied STOP)."""
    text = USAGE + "\n\n" + permissions_text(policy, rule)
    if opted_out:
        text += "\n" + opted_out_text(policy, opted_out)
    return text


def opted_out_text(policy: Policy, opted_out: Sequence[tuple[str, datetime]]) -> str:
    """The opt-out list: these numbers replied STOP and get nothing until they reply START."""
    masked = policy.defaults.mask_numbers
    entries = [
        f"{recipient_label(Recipient(number, policy.contact_name(number)), masked)} "
        f"(since {slack_time(since)})"
        for number, since in opted_out[:SHOWN_ENTRIES]
    ]
    return (
        "Opted out (replied STOP; nothing is sent to them until they reply START): "
        + listing(entries, len(opted_out), most=SHOWN_ENTRIES, sep="; ")
        + "."
    )
