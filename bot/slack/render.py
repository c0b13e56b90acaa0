"""Everything a user reads: error texts and Slack messages, rendered from domain data.

This is the one place that turns errors into user messages (``describe_error``) and the one
place that decides whether a number is shown in full or masked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.core.model import WILDCARD, Policy, Recipient
from bot.core.phone import mask
from bot.core.policy import AUTO_PAGE_PREFIX, SendPlan, allowed_from_names
from bot.core.segments import SegmentInfo
from bot.errors import BridgeError
from bot.slack.ids import ActionId

if TYPE_CHECKING:
    from bot.store import InboundMessage, SendRecord, StoredRequest

logger = logging.getLogger(__name__)

USAGE = (
    "*Send an SMS:* `/sms <to> <text>` — `<to>` is a contact, a group, a number "
    "(+447700900123, or national like 07700900123) or several joined by commas.\n"
    "`/sms from:<name> <to> <text>` picks the sending number. "
    "`/sms` alone opens a form with a live segment count. `/sms help` shows this.\n"
    "`/sms status <message_id>` shows what the bridge and 2Chat know of one SMS."
)
STATUS_USAGE = (
    "Usage: `/sms status <message_id>` — the id from a :white_check_mark: line in a thread."
)
# 2Chat's fields not worth repeating in /sms status: the text is the bridge's record.
_REMOTE_SKIPPED = frozenset({"text", "body", "message", "uuid", "id", "message_uuid"})


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient: a 2Chat message id, or the error."""

    recipient: Recipient
    message_id: str | None = None
    error: str | None = None
    pending: bool = False

    @property
    def ok(self) -> bool:
        return self.message_id is not None


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


def show_number(number: str, masked: bool) -> str:
    return mask(number) if masked else number


def recipient_label(recipient: Recipient, masked: bool) -> str:
    number = show_number(recipient.number, masked)
    return f"{recipient.name} ({number})" if recipient.name else number


def segments_label(info: SegmentInfo) -> str:
    plural = "" if info.segments == 1 else "s"
    return f"{info.segments} segment{plural}, {info.encoding}"


def request_text(plan: SendPlan, masked: bool) -> str:
    """The request message posted in the channel: who, to whom, from where, what."""
    to = ", ".join(recipient_label(r, masked) for r in plan.recipients)
    sender_number = show_number(plan.from_number, masked)
    quoted = "\n".join("> " + line for line in plan.text.splitlines() or [""])
    auto = plan.sender.startswith(AUTO_PAGE_PREFIX)
    who = "The auto_page rule" if auto else f"<@{plan.sender}>"
    return (
        f":outbox_tray: {who} is texting {to} from {plan.from_name} "
        f"({sender_number}) — {segments_label(plan.segments)}\n{quoted}"
    )


def outcome_line(outcome: Outcome, masked: bool) -> str:
    label = recipient_label(outcome.recipient, masked)
    if outcome.pending:
        return f":hourglass: {label}: sending…"
    if outcome.ok:
        return f":white_check_mark: {label}: queued by 2Chat, message_id `{outcome.message_id}`"
    return f":x: {label}: {outcome.error}"


def outcome_text(outcomes: list[Outcome], masked: bool, elapsed: float | None = None) -> str:
    """The thread reply: one line per recipient, and for several a headline that shows
    partial failure at a glance (and how long the fan-out took)."""
    lines = [outcome_line(outcome, masked) for outcome in outcomes]
    pending = sum(1 for outcome in outcomes if outcome.pending)
    if pending:
        done = len(outcomes) - pending
        lines.insert(0, f":hourglass_flowing_sand: Sending… {done} of {len(outcomes)} done")
    elif len(outcomes) > 1:
        failed = sum(1 for outcome in outcomes if not outcome.ok)
        took = f" in {elapsed:.1f} s" if elapsed is not None else ""
        headline = f"*{failed} of {len(outcomes)} failed*" if failed else "*all sent*"
        lines.insert(
            0, f"{headline} — {len(outcomes) - failed}/{len(outcomes)} queued by 2Chat{took}"
        )
    return "\n".join(lines)


def refusal_text(reason: str) -> str:
    return f":no_entry: Not sent: {reason}. Nothing was sent to 2Chat."


def permissions_text(policy: Policy, user_id: str) -> str:
    """What this user may send to and from, for ``/sms help``."""
    rule = policy.rule_for(user_id)
    if rule is None:
        return "You are not in the SMS allowlist, so you cannot send. Ask an admin to add you."
    targets = "anyone (except US numbers)" if WILDCARD in rule.to else ", ".join(rule.to)
    lines = [
        f"You may text: {targets}.",
        "You may send from: " + ", ".join(allowed_from_names(policy, rule)) + ".",
    ]
    if rule.approval_required:
        lines.append("Your texts need an approver's OK before they are sent.")
    if policy.groups:
        groups = "; ".join(
            f"{name}: {', '.join(member.label for member in members)}"
            for name, members in policy.groups.items()
        )
        lines.append(f"Groups — {groups}.")
    lines.append(f"Texts longer than {policy.defaults.max_segments} segments are refused.")
    return "\n".join(lines)


def help_text(policy: Policy, user_id: str, opted_out: Sequence[tuple[str, datetime]] = ()) -> str:
    """``/sms help``: usage, what this user may send, and who has opted out (replied STOP)."""
    text = USAGE + "\n\n" + permissions_text(policy, user_id)
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
        for number, since in opted_out
    ]
    return (
        "Opted out (replied STOP; nothing is sent to them until they reply START): "
        + "; ".join(entries)
        + "."
    )


def opted_out_reason(recipients: Iterable[Recipient]) -> str:
    """Why a send to these recipients is refused."""
    labels = [recipient.label for recipient in recipients]
    who = ", ".join(labels)
    verb = "replied" if len(labels) == 1 else "each replied"
    pronoun = "they have" if len(labels) == 1 else "they have all"
    return f"{who} {verb} STOP; {pronoun} opted out"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


def sender_label(sender: Recipient, masked: bool) -> str:
    """Who sent an SMS reply, name first when the bridge knows it."""
    number = show_number(sender.number, masked)
    return f"*{sender.name}* ({number})" if sender.name else f"*{number}*"


def reply_text(sender: Recipient, text: str, masked: bool, note: str | None = None) -> str:
    """An SMS reply as posted in the thread of the request it answers."""
    body = f":speech_balloon: SMS reply from {sender_label(sender, masked)}:\n{_quote(text)}"
    return f"{body}\n{note}" if note else body


def unknown_reply_text(sender: Recipient, from_label: str, text: str, masked: bool) -> str:
    """An SMS from a number the bridge has not texted lately, for the configured channel."""
    return (
        f":speech_balloon: SMS to {from_label} from {sender_label(sender, masked)}, "
        f"a number the bridge has not texted lately:\n{_quote(text)}"
    )


def ack_summary_text(
    recipients: Sequence[Recipient], acks: Mapping[str, datetime], masked: bool
) -> str:
    """A page's acknowledgement summary: who replied an ack word and when, who has not."""
    done = [r for r in recipients if r.number in acks]
    waiting = [r for r in recipients if r.number not in acks]
    lines = [f":white_check_mark: *Acknowledged by {len(done)} of {len(recipients)}*"]
    lines += [f"• {recipient_label(r, masked)} at {slack_time(acks[r.number])}" for r in done]
    if waiting:
        lines.append(
            ":hourglass: Not yet: " + ", ".join(recipient_label(r, masked) for r in waiting)
        )
    return "\n".join(lines)


def section(text: str) -> dict[str, Any]:
    """A Block Kit section; Slack caps section text at 3000 characters."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def approval_text(plan_text: str, requester: str) -> str:
    return f":raised_hand: Approval needed for a text by <@{requester}>\n{plan_text}"


def approval_blocks(request_id: str, body: str) -> list[dict[str, Any]]:
    """The approval request with Approve / Reject buttons carrying only the request id."""
    return [
        section(body),
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                button("Approve", ActionId.APPROVE, request_id, "primary"),
                button("Reject", ActionId.REJECT, request_id, "danger"),
            ],
        },
    ]


def decided_blocks(body: str, verdict: str) -> list[dict[str, Any]]:
    """The approval message once decided: buttons gone, the decision shown."""
    return [section(body), {"type": "context", "elements": [{"type": "mrkdwn", "text": verdict}]}]


def outcome_blocks(text: str, retry_send_ids: list[int]) -> list[dict[str, Any]] | None:
    """Outcome text, plus a Retry button per send whose outcome is unknown."""
    if not retry_send_ids:
        return None
    buttons = [button("Retry", ActionId.RETRY, str(send_id)) for send_id in retry_send_ids[:25]]
    return [section(text), {"type": "actions", "block_id": "retry", "elements": buttons}]


def _remote_text(remote: Mapping[str, Any] | None, remote_error: str | None) -> str:
    """What 2Chat's GET /open/sms/message answered, its scalar fields only."""
    if remote_error:
        return f"*2Chat:* could not be asked: {remote_error}"
    fields = [
        f"{key}: `{str(value)[:80]}`"
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
    lines = [f":mag: *SMS `{send.message_id}`* to {to}"]
    if request is not None:
        sender = show_number(request.from_number, masked)
        who = (
            "the auto_page rule"
            if request.sender.startswith(AUTO_PAGE_PREFIX)
            else f"<@{request.sender}>"
        )
        lines.append(
            f"• {request.kind} from {request.from_name} ({sender}), requested by {who} "
            f"on {slack_time(request.created_at)} in <#{request.channel_id}>"
        )
        if request.decided_by:
            lines.append(f"• approved by <@{request.decided_by}>")
    state = {
        "sent": "queued by 2Chat (2Chat reports no delivery)",
        "failed": f"failed: {send.error}",
        "unknown": f"outcome unknown: {send.error}",
    }.get(send.state, send.state)
    lines.append(f"• bridge: {state}, at {slack_time(send.updated_at)}; attempts: {send.attempts}")
    if acknowledged_at is not None:
        lines.append(f"• acknowledged by SMS reply at {slack_time(acknowledged_at)}")
    lines.append(_remote_text(remote, remote_error))
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
    lines = [f":mag: *SMS reply `{inbound.uuid}`* from {recipient_label(sender, masked)}, {when}"]
    kind = inbound.kind.removeprefix("unknown-")
    meaning = {"stop": "opt-out (STOP)", "start": "opt-in (START)", "ack": "acknowledgement"}
    if request is not None:
        lines.append(
            f"• a {meaning.get(kind, 'reply')} to the text by <@{request.sender}> in "
            f"<#{request.channel_id}> on {slack_time(request.created_at)}"
        )
    else:
        lines.append(f"• a {meaning.get(kind, 'message')} from a number not texted lately")
    lines.append(_remote_text(remote, remote_error))
    return "\n".join(lines)
