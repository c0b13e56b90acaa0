"""The approval request approvers see, with its buttons, and their verdict."""

from __future__ import annotations

from bot.slack.ids import ActionId, BlockId
from bot.slack.render.blocks import Block, button, context, sections
from bot.slack.render.escaping import shown


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
            "block_id": BlockId.APPROVAL,
            "elements": [
                button("Approve", ActionId.APPROVE, request_id, "primary"),
                button("Reject", ActionId.REJECT, request_id, "danger"),
            ],
        },
    ]


def decided_blocks(body: str, verdict: str) -> list[Block]:
    """The approval message once decided: buttons gone, the decision shown."""
    return [*sections(body), context(verdict)]
