"""Everything a user reads: error texts and Slack messages, rendered from domain data.

This is the one place that turns errors into user messages (``describe_error``) and the one
place that decides whether a number is shown in full or masked.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from bot.config import WILDCARD, Policy, Recipient
from bot.errors import BridgeError
from bot.phone import mask
from bot.policy import AUTO_PAGE_PREFIX, SendPlan, allowed_from_names
from bot.segments import SegmentInfo

logger = logging.getLogger(__name__)

USAGE = (
    "*Send an SMS:* `/sms <to> <text>` — `<to>` is a contact, a group, a number "
    "(+447700900123, or national like 07700900123) or several joined by commas.\n"
    "`/sms from:<name> <to> <text>` picks the sending number. "
    "`/sms` alone opens a form with a live segment count. `/sms help` shows this."
)


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


def help_text(policy: Policy, user_id: str) -> str:
    return USAGE + "\n\n" + permissions_text(policy, user_id)


def section(text: str) -> dict[str, Any]:
    """A Block Kit section; Slack caps section text at 3000 characters."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


APPROVE_ACTION = "approval_approve"
REJECT_ACTION = "approval_reject"
RETRY_ACTION = "send_retry"


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
                button("Approve", APPROVE_ACTION, request_id, "primary"),
                button("Reject", REJECT_ACTION, request_id, "danger"),
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
    buttons = [button("Retry", RETRY_ACTION, str(send_id)) for send_id in retry_send_ids[:25]]
    return [section(text), {"type": "actions", "block_id": "retry", "elements": buttons}]
