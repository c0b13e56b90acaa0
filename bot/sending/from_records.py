"""What stored requests and sends mean to policy and to the chat: pure conversions from
records (a plan, an origin, outcomes), named apart from Slack's "views" (its modals)."""

from __future__ import annotations

import json

from bot.core.budget import Priority
from bot.core.escalation import is_ladder_request
from bot.core.model import Recipient
from bot.core.policy import SendPlan
from bot.core.segments import analyze
from bot.sending.ports import Origin, Outcome
from bot.store import SendRecord, StoredRequest

UNKNOWN_AFTER_CRASH = (
    "outcome unknown: the bridge stopped while sending; 2Chat may or may not have sent it"
)


def plan_of(request: StoredRequest) -> SendPlan:
    """Rebuild what a stored request would send, for display and re-checks."""
    return SendPlan(
        sender=request.sender,
        from_name=request.from_name,
        from_number=request.from_number,
        recipients=tuple(Recipient(r.number, r.name) for r in request.recipients),
        text=request.text,
        segments=analyze(request.text),
    )


def origin_of(request: StoredRequest) -> Origin:
    """Where a stored request's requester hears back, as when it was submitted."""
    return Origin(request.channel_id, request.sender, request.response_url, request.thread_ts)


def outcome_of(send: SendRecord) -> Outcome:
    """A send as an outcome line: sent, failed, unknown (a crash) or still pending."""
    recipient = Recipient(send.number, send.name)
    if send.state == "sent":
        return Outcome(recipient, message_id=send.message_id)
    if send.state == "unknown":
        return Outcome(recipient, error=send.error or UNKNOWN_AFTER_CRASH)
    if send.state == "failed":
        return Outcome(recipient, error=send.error or "failed")
    return Outcome(recipient, pending=True)


def already_decided(request: StoredRequest | None) -> str:
    """Tell a late clicker what the first decision was (state moves on after approval)."""
    if request is None:
        return "this approval request is unknown to the bridge"
    verdict = request.state if request.state in ("rejected", "expired") else "approved"
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return f"this text was already {verdict}{who}"


def targets_of(request: StoredRequest) -> tuple[str, ...]:
    """The recipients a request named, as recorded (none for older or ladder requests)."""
    if not request.targets:
        return ()
    found = json.loads(request.targets)
    return tuple(str(target) for target in found) if isinstance(found, list) else ()


def recorded_targets(targets: tuple[str, ...]) -> str | None:
    """How ``NewRequest.targets`` keeps a plan's targets."""
    return json.dumps(list(targets)) if targets else None


def priority_of(request: StoredRequest) -> Priority:
    """Pages and escalation tiers go before every other text."""
    if request.kind == "page" or is_ladder_request(request.dedupe_key):
        return Priority.PAGE
    return Priority.SEND
