"""The pager board's controls: **Ack**, **Escalate now** and **Stop paging** buttons, and a
:white_check_mark: reaction on the board, which acks like the button.

Who may ack (people allowed to send SMS, approvers, people the page texted), escalate or
stop (the person who paged, approvers) is ``bot.core.access``'s answer, as for every action;
everyone else is told so privately. The board itself is
drawn by ``render.board`` and kept current by ``sending.escalation``.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.core.access import Action
from bot.errors import BadPayload
from bot.sending.escalation import Command, Via
from bot.slack.ids import ActionId
from bot.slack.listeners.deps import Bridge
from bot.slack.payloads import BlockAction, ReactionAdded

logger = logging.getLogger(__name__)

ACK_REACTION = "white_check_mark"


async def ack_from_slack(
    bridge: Bridge,
    escalation_id: str,
    user: str,
    channel: str | None,
    *,
    via: Via,
) -> None:
    """Ack for a Slack user; a refusal or a late ack is told to them privately."""
    workflow = bridge.workflow
    action = Action.ACK_REACTION if via == "reaction" else Action.ACK_BUTTON
    verdict = await workflow.may_ack(escalation_id, user, action)
    if not verdict.allowed:
        await bridge.tell_clicker(channel, user, f":no_entry: {verdict.refusal()}")
        return
    label = (await bridge.user_names([user])).get(user, user)  # the id still says who
    if not await workflow.ack_page(escalation_id, user, via, label):
        await bridge.tell_clicker(
            channel, user, ":information_source: This page was already handled; your ack is noted."
        )


async def command_from_slack(
    bridge: Bridge, escalation_id: str, user: str, channel: str | None, what: Command
) -> None:
    refusal = await bridge.workflow.command_page(escalation_id, user, what)
    if refusal:
        await bridge.tell_clicker(channel, user, f":no_entry: {refusal}")


def register(app: AsyncApp, bridge: Bridge) -> None:
    """The board's buttons and the ✅ reaction."""

    @app.action(ActionId.LADDER_ACK)
    async def ack_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        action = BlockAction.parse(body)
        work = ack_from_slack(
            bridge, action.button_value(), action.user_id, action.channel_id, via="button"
        )
        bridge.runner.spawn(work, name=f"ladder-ack-{action.button_value()}")

    _register_command(app, bridge, ActionId.LADDER_ESCALATE, "escalate")
    _register_command(app, bridge, ActionId.LADDER_STOP, "stop")

    @app.event("reaction_added")
    async def reaction(body: dict[str, Any]) -> None:
        try:
            event = ReactionAdded.parse(body)
        except BadPayload as exc:
            logger.info("reaction_added ignored: %s", exc)
            return
        if event.reaction != ACK_REACTION:
            return
        bridge.runner.spawn(ack_by_reaction(bridge, event), name=f"ladder-reaction-{event.ts}")


def _register_command(app: AsyncApp, bridge: Bridge, action_id: ActionId, what: Command) -> None:
    @app.action(action_id)
    async def command_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        action = BlockAction.parse(body)
        work = command_from_slack(
            bridge, action.button_value(), action.user_id, action.channel_id, what
        )
        bridge.runner.spawn(work, name=f"ladder-{what}-{action.button_value()}")


async def ack_by_reaction(bridge: Bridge, event: ReactionAdded) -> None:
    """A ✅ on a board acks its page, once per Slack event however often it is delivered."""
    escalation = await bridge.queries.escalation_on_board(event.channel_id, event.ts)
    if escalation is None:
        return
    if not await bridge.queries.claim_once(event.dedupe_key):
        return
    await ack_from_slack(bridge, escalation.id, event.user_id, event.channel_id, via="reaction")
