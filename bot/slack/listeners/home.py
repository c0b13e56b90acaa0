"""The App Home tab: a user's recent texts and what they may send; for approvers, the
approvals waiting for them.

The Approve / Reject buttons here carry the same action ids and values as the buttons on
the approval message in the channel, so the same handlers decide, with the same rules and
the same single conditional update in the store: exactly once, wherever someone clicks.
The view is built by a pure function from store records, then published.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.access import Action, permission
from bot.core.model import Policy, SenderRule
from bot.core.policy import sender_rule
from bot.sending.from_records import outcome_of, plan_of
from bot.sending.queries import SendRecord, StoredRequest
from bot.slack.ids import ActionId, BlockId
from bot.slack.listeners.deps import Bridge
from bot.slack.render.approvals import approval_text
from bot.slack.render.blocks import (
    MAX_VIEW_BLOCKS,
    Block,
    button,
    context,
    fit_items,
    header,
    sections,
)
from bot.slack.render.escaping import shown
from bot.slack.render.labels import slack_time
from bot.slack.render.outcomes import outcome_text, request_text
from bot.slack.render.usage import opted_out_text, permissions_text

logger = logging.getLogger(__name__)

RECENT_LIMIT = 10
PENDING_LIMIT = 20
# Blocks kept free for the recent texts however many approvals wait (the view holds 100).
RECENT_ROOM = 30


def request_summary(request: StoredRequest, sends: Sequence[SendRecord], masked: bool) -> str:
    """One recent request: when, what, and how it ended (or where it stands)."""
    head = f"*{slack_time(request.created_at)}* — " + request_text(plan_of(request), masked)
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    if request.state == "pending_approval":
        status = ":hourglass: waiting for an approver"
    elif request.state == "rejected":
        reason = f": {shown(request.decision_reason, masked)}" if request.decision_reason else ""
        status = f":no_entry_sign: rejected{who}{reason}"
    elif request.state == "expired":
        status = ":alarm_clock: expired: nobody approved it in time"
    else:
        outcomes = [outcome_of(send) for send in sends]
        status = outcome_text(outcomes, masked, request_id=request.id)
    return f"{head}\n{status}"


def home_view(
    policy: Policy,
    user: str,
    rule: SenderRule | None,
    recent: Sequence[tuple[StoredRequest, Sequence[SendRecord]]],
    pending: Sequence[StoredRequest] | None,
    opted_out: Sequence[tuple[str, datetime]] = (),
) -> dict[str, Any]:
    """The Home tab for ``user``, whose ``senders`` entry is ``rule``; ``pending`` is None
    for someone who may not see the approvals, ``opted_out`` empty for someone who may not
    see the opt-out list (``bot.core.access`` decides both).

    Slack refuses a view of more than 100 blocks, so whole items are taken while they fit
    (approvals first, leaving ``RECENT_ROOM`` for the recent texts) and the rest counted."""
    masked = policy.defaults.mask_numbers
    blocks: list[Block] = [header("SMS Bridge"), *sections(permissions_text(policy, rule))]
    if opted_out:
        blocks.append(context(opted_out_text(policy, opted_out)))
    if pending is not None:
        blocks.append(header(f"Waiting for approval ({len(pending)})"))
        if not pending:
            blocks.append(context("Nothing is waiting for an approver."))
        items = [_pending_blocks(policy, user, request, masked) for request in pending]
        room = MAX_VIEW_BLOCKS - len(blocks) - RECENT_ROOM - 1
        taken, more = fit_items(items[:PENDING_LIMIT], room)
        blocks += taken
        more += max(0, len(pending) - PENDING_LIMIT)
        if more:
            blocks.append(context(f"…and {more} more in the approvals channel."))
    blocks.append(header("Your recent texts"))
    if not recent:
        blocks.append(context("You have not sent any texts yet. Try `/sms help`."))
    items = [sections(request_summary(request, sends, masked)) for request, sends in recent]
    taken, more = fit_items(items[:RECENT_LIMIT], MAX_VIEW_BLOCKS - len(blocks) - 1)
    blocks += taken
    if more:
        blocks.append(context(f"…and {more} more recent texts, not shown for room."))
    return {"type": "home", "blocks": blocks}


def _pending_blocks(policy: Policy, user: str, request: StoredRequest, masked: bool) -> list[Block]:
    """An approval as in the channel: the same buttons, or why this user cannot decide."""
    body = approval_text(request_text(plan_of(request), masked), request.sender)
    if request.expires_at is not None:
        body += f"\nExpires {slack_time(request.expires_at)}."
    if request.sender == user and not policy.approvals.allow_self_approval:
        return [*sections(body), context("This is your own text: another approver decides.")]
    return [
        *sections(body),
        {
            "type": "actions",
            # unique per view; the action ids are shared
            "block_id": f"{BlockId.APPROVAL}-{request.id}",
            "elements": [
                button("Approve", ActionId.APPROVE, request.id, "primary"),
                button("Reject", ActionId.REJECT, request.id, "danger"),
            ],
        },
    ]


async def build_home(bridge: Bridge, user: str) -> dict[str, Any]:
    """Read what the Home tab shows (``Queries``), then render it."""
    queries = bridge.queries
    policy = bridge.policy
    requests = await queries.recent_requests(user, RECENT_LIMIT)
    recent = [(request, await queries.sends(request.id)) for request in requests]
    directory = await bridge.directory()
    pending: list[StoredRequest] | None = None
    if permission(policy, directory, user, Action.HOME).allowed:
        pending = await queries.awaiting_approval()
    opted_out: list[tuple[str, datetime]] = []
    if permission(policy, directory, user, Action.HELP).allowed:
        opted_out = [(o.number, o.since) for o in await queries.opt_outs()]
    rule = sender_rule(policy, user, directory)
    return home_view(policy, user, rule, recent, pending, opted_out)


async def publish_home(bridge: Bridge, client: AsyncWebClient, user: str) -> None:
    """Publish the Home tab for ``user``; a failure is logged, never raised at Slack."""
    view = await build_home(bridge, user)
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackClientError as exc:
        logger.warning("could not publish the Home tab of %s: %s", user, exc)


def opened_home(event: Mapping[str, Any]) -> str | None:
    """The user who opened the Home tab (not the Messages tab), or None."""
    user = event.get("user")
    if event.get("tab", "home") != "home" or not isinstance(user, str) or not user:
        return None
    return user


def register(app: AsyncApp, bridge: Bridge) -> None:
    """``app_home_opened`` publishes a fresh view; its work runs on the bridge's runner."""

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        user = opened_home(event)
        if user is not None:
            bridge.runner.spawn(publish_home(bridge, client, user), name=f"home-{user}")
