"""Everything a user reads: error texts and Slack messages, rendered from domain data.

This is the one place that turns errors into user messages (``describe_error``), the one
place that decides whether a number is shown in full or masked (``show_number``, and
``shown`` for numbers inside free text), and the one place that escapes text the bridge did
not write (``untrusted``). Long lists are summarised here, so every message stays short.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.core.model import WILDCARD, Policy, Recipient, SenderRule
from bot.core.phone import mask
from bot.core.policy import AUTO_PAGE_PREFIX, SendPlan, allowed_from_names
from bot.core.segments import SegmentInfo
from bot.errors import BridgeError
from bot.sending.ports import Outcome, StatusFound
from bot.slack.blocks import (
    MAX_MESSAGE_TEXT,
    Block,
    button,
    context,
    sections,
    split_text,
)
from bot.slack.ids import ActionId

if TYPE_CHECKING:
    from bot.sending.queries import InboundMessage, SendRecord, StoredRequest

logger = logging.getLogger(__name__)

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
# 2Chat's fields not worth repeating in /sms status: the text is the bridge's record.
_REMOTE_SKIPPED = frozenset({"text", "body", "message", "uuid", "id", "message_uuid"})
# How much of a long list a message names before saying "and N more".
SHOWN_NAMES = 5
SHOWN_ENTRIES = 20
# An outcome lists at most this many lines: every recipient of a send to this many or
# fewer, else only failures (the first this many; ``/sms status <request id>`` has them all).
LISTED_OUTCOMES = 25
MAX_ERROR_CHARS = 300
_E164 = re.compile(r"\+[1-9]\d{6,14}")


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


def untrusted(text: str) -> str:
    """Text the bridge did not write (SMS texts and replies, names, reasons, 2Chat's errors)
    shown literally. Escaping ``&``, ``<`` and ``>`` is Slack's documented mrkdwn escaping:
    ``<!channel>``, ``<@U…>``, ``<#C…>``, ``<!subteam^…>`` and ``<https://evil|slack.com>``
    then show as typed, and notify or disguise nothing."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def show_number(number: str, masked: bool) -> str:
    return mask(number) if masked else number


def shown(text: str, masked: bool) -> str:
    """Free text not of our making (an error, a reason) as shown: escaped, and any phone
    number in it masked like every other number the bridge shows."""
    text = untrusted(text)
    return _E164.sub(lambda found: show_number(found.group(), masked), text)


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


def request_text(plan: SendPlan, masked: bool) -> str:
    """The request message posted in the channel: who sends, from where and what first;
    whom to last, summarised for a big roster (the count, the first few, "and N more")."""
    sender_number = show_number(plan.from_number, masked)
    auto = plan.sender.startswith(AUTO_PAGE_PREFIX)
    who = "The auto_page rule" if auto else f"<@{plan.sender}>"
    sending = (
        f"from {untrusted(plan.from_name)} ({sender_number}) — {segments_label(plan.segments)}"
    )
    quoted = _quote(untrusted(plan.text))
    to = recipients_text(plan.recipients, masked)
    if len(plan.recipients) <= SHOWN_NAMES:
        return f":outbox_tray: {who} is texting {to} {sending}\n{quoted}"
    count = len(plan.recipients)
    return f":outbox_tray: {who} is texting {count} recipients {sending}\n{quoted}\n*To:* {to}"


def error_text(error: str | None, masked: bool) -> str:
    """Why a send failed (often 2Chat's own words), escaped, masked and of sane length."""
    error = error or "failed"
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    return shown(error, masked)


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


def refusal_text(reason: str, masked: bool = False) -> str:
    """A refusal; the reason may quote what the user typed, so it is shown escaped."""
    return f":no_entry: Not sent: {shown(reason, masked)}. Nothing was sent to 2Chat."


def unposted_approval_text(channel: str) -> str:
    """A request that needs approval but could not be shown to the approvers."""
    return (
        f":no_entry: Not sent: the approval request could not be posted in <#{channel}>. "
        "Nothing was sent to 2Chat."
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


def target_label(target: str, masked: bool) -> str:
    """A senders entry's ``to`` item: a whole number is shown like every number."""
    return show_number(target, masked) if _E164.fullmatch(target) else untrusted(target)


def help_text(
    policy: Policy, rule: SenderRule | None, opted_out: Sequence[tuple[str, datetime]] = ()
) -> str:
    """``/sms help``: usage, what this user may send, and who has opted out (replied STOP)."""
    text = USAGE + "\n\n" + permissions_text(policy, rule)
    if opted_out:
        text += "\n" + opted_out_text(policy, opted_out)
    return text


def slack_time(moment: datetime) -> str:
    """A time every reader sees in their own time zone (UTC as the fallback text)."""
    utc = moment.astimezone(UTC)
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{utc:%Y-%m-%d %H:%M} UTC>"


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


def opted_out_reason(recipients: Iterable[Recipient]) -> str:
    """Why a send to these recipients is refused (plain data: shown through ``shown``)."""
    labels = [recipient.label for recipient in recipients]
    who = listing(labels)
    verb = "replied" if len(labels) == 1 else "each replied"
    pronoun = "they have" if len(labels) == 1 else "they have all"
    return f"{who} {verb} STOP; {pronoun} opted out"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


def sender_label(sender: Recipient, masked: bool) -> str:
    """Who sent an SMS reply, name first when the bridge knows it."""
    number = show_number(sender.number, masked)
    return f"*{untrusted(sender.name)}* ({number})" if sender.name else f"*{number}*"


def reply_text(sender: Recipient, text: str, masked: bool, note: str | None = None) -> str:
    """An SMS reply as posted in the thread of the request it answers; anyone can text the
    bridge, so the reply is shown escaped."""
    quoted = _quote(untrusted(text))
    body = f":speech_balloon: SMS reply from {sender_label(sender, masked)}:\n{quoted}"
    return f"{body}\n{note}" if note else body


def unknown_reply_text(sender: Recipient, from_label: str, text: str, masked: bool) -> str:
    """An SMS from a number the bridge has not texted lately, for the configured channel."""
    return (
        f":speech_balloon: SMS to {from_label} from {sender_label(sender, masked)}, "
        f"a number the bridge has not texted lately:\n{_quote(untrusted(text))}"
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


def approval_text(plan_text: str, requester: str) -> str:
    return f":raised_hand: Approval needed for a text by <@{requester}>\n{plan_text}"


def verdict_text(user: str, approve: bool, reason: str | None, masked: bool) -> str:
    """An approver's decision as shown; a rejection reason is typed text, shown escaped."""
    if approve:
        return f":white_check_mark: Approved by <@{user}>"
    why = f": {shown(reason, masked)}" if reason else ""
    return f":no_entry_sign: Rejected by <@{user}>{why}"


def approval_blocks(request_id: str, body: str) -> list[Block]:
    """The approval request with Approve / Reject buttons carrying only the request id."""
    return [
        *sections(body),
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                button("Approve", ActionId.APPROVE, request_id, "primary"),
                button("Reject", ActionId.REJECT, request_id, "danger"),
            ],
        },
    ]


def decided_blocks(body: str, verdict: str) -> list[Block]:
    """The approval message once decided: buttons gone, the decision shown."""
    return [*sections(body), context(verdict)]


def _remote_text(remote: Mapping[str, Any] | None, remote_error: str | None, masked: bool) -> str:
    """What 2Chat's GET /open/sms/message answered, its scalar fields only."""
    if remote_error:
        return f"*2Chat:* could not be asked: {shown(remote_error, masked)}"
    fields = [
        f"{shown(str(key)[:40], masked)}: `{shown(str(value)[:80], masked)}`"
        for key, value in (remote or {}).items()
        if key not in _REMOTE_SKIPPED and isinstance(value, str | int | float | bool)
    ][:12]
    return "*2Chat says:* " + (", ".join(fields) if fields else "nothing more about it")


def send_status_text(
    send: SendRecord,
    request: StoredRequest | None,
    acknowledged_at: datetime | None,
    remote: Mapping[str, Any] | None,
    remote_error: str | None,
    masked: bool,
) -> str:
    """``/sms status`` for an SMS the bridge sent: its record, then 2Chat's view of it."""
    to = recipient_label(Recipient(send.number, send.name), masked)
    lines = [f":mag: *SMS `{untrusted(str(send.message_id))}`* to {to}"]
    if request is not None:
        sender = f"{untrusted(request.from_name)} ({show_number(request.from_number, masked)})"
        who = (
            "the auto_page rule"
            if request.sender.startswith(AUTO_PAGE_PREFIX)
            else f"<@{request.sender}>"
        )
        lines.append(
            f"• {request.kind} from {sender}, requested by {who} "
            f"on {slack_time(request.created_at)} in <#{request.channel_id}>"
        )
        if request.decided_by:
            lines.append(f"• approved by <@{request.decided_by}>")
    state = {
        "sent": "queued by 2Chat (2Chat reports no delivery)",
        "failed": f"failed: {error_text(send.error, masked)}",
        "unknown": f"outcome unknown: {error_text(send.error, masked)}",
    }.get(send.state, send.state)
    lines.append(f"• bridge: {state}, at {slack_time(send.updated_at)}; attempts: {send.attempts}")
    if acknowledged_at is not None:
        lines.append(f"• acknowledged by SMS reply at {slack_time(acknowledged_at)}")
    lines.append(_remote_text(remote, remote_error, masked))
    return "\n".join(lines)


def inbound_status_text(
    inbound: InboundMessage,
    sender: Recipient,
    request: StoredRequest | None,
    remote: Mapping[str, Any] | None,
    remote_error: str | None,
    masked: bool,
) -> str:
    """``/sms status`` for an SMS reply the bridge has read."""
    when = slack_time(inbound.sent_at or inbound.seen_at)
    uuid_shown = untrusted(inbound.uuid)
    lines = [f":mag: *SMS reply `{uuid_shown}`* from {recipient_label(sender, masked)}, {when}"]
    kind = inbound.kind.removeprefix("unknown-")
    meaning = {"stop": "opt-out (STOP)", "start": "opt-in (START)", "ack": "acknowledgement"}
    if request is not None:
        lines.append(
            f"• a {meaning.get(kind, 'reply')} to the text by <@{request.sender}> in "
            f"<#{request.channel_id}> on {slack_time(request.created_at)}"
        )
    else:
        lines.append(f"• a {meaning.get(kind, 'message')} from a number not texted lately")
    lines.append(_remote_text(remote, remote_error, masked))
    return "\n".join(lines)


def status_text(found: StatusFound) -> str:
    """``/sms status`` for what was found: an SMS the bridge sent, or one it read."""
    if found.send is not None:
        return send_status_text(
            found.send,
            found.request,
            found.acknowledged_at,
            found.remote,
            found.remote_error,
            found.masked,
        )
    assert found.inbound is not None and found.sender is not None
    return inbound_status_text(
        found.inbound,
        found.sender,
        found.request,
        found.remote,
        found.remote_error,
        found.masked,
    )


def request_status_texts(
    request_id: str, described: str, outcomes: Sequence[Outcome], masked: bool
) -> list[str]:
    """``/sms status <request id>``: the counts, the request, then every failure, in as
    many messages as Slack's 40,000 characters per message need (nothing is left out)."""
    failed = [o for o in outcomes if not o.ok and not o.pending]
    pending = sum(1 for o in outcomes if o.pending)
    sent = len(outcomes) - len(failed) - pending
    still = f", {pending} still sending" if pending else ""
    lines = [
        f":mag: *Text `{untrusted(request_id)}`*: {sent}/{len(outcomes)} queued by 2Chat, "
        f"{len(failed)} failed{still}",
        described,
    ]
    lines += [outcome_line(outcome, masked) for outcome in failed]
    return split_text("\n".join(lines), MAX_MESSAGE_TEXT)


def unreachable_text(mentions: Sequence[str], unread: Sequence[str] = ()) -> str:
    """Roster members not texted: no number, or a Slack profile that could not be read
    (never called "no number"). ``<@U…>`` mentions of ids from Slack: shown unescaped."""
    parts = (("no phone number", mentions), ("Slack profile lookup failed", unread))
    return "\n".join(
        f":warning: Not reachable, {why}: {listing(list(who), most=SHOWN_ENTRIES)}. "
        "They were not texted."
        for why, who in parts
        if who
    )
