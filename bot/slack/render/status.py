"""``/sms status``: one SMS (sent or received) as the bridge recorded it and as 2Chat
reports it, or every outcome of one request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.core.model import Recipient
from bot.core.policy import AUTO_PAGE_PREFIX
from bot.sending.ports import Outcome, StatusFound
from bot.slack.render.blocks import MAX_MESSAGE_TEXT, split_text
from bot.slack.render.escaping import show_number, shown, untrusted
from bot.slack.render.labels import error_text, recipient_label, slack_time
from bot.slack.render.outcomes import outcome_line

if TYPE_CHECKING:
    from bot.sending.queries import InboundMessage, SendRecord, StoredRequest


# 2Chat's fields not worth repeating in /sms status: the text is the bridge's record.
_REMOTE_SKIPPED = frozenset({"text", "body", "message", "uuid", "id", "message_uuid"})


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
    kind = inbound.kind.removeprefix("failed-").removeprefix("unknown-")
    meaning = {"stop": "opt-out (STOP)", "start": "opt-in (START)", "ack": "acknowledgement"}
    if request is not None:
        lines.append(
            f"• a {meaning.get(kind, 'reply')} to the text by <@{request.sender}> in "
            f"<#{request.channel_id}> on {slack_time(request.created_at)}"
        )
    else:
        lines.append(f"• a {meaning.get(kind, 'message')} from a number not texted lately")
    if inbound.kind.startswith("failed-"):
        lines.append("• :warning: not acted on: the bridge gave up on it after repeated failures")
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
