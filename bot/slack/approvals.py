"""Approve, Reject (with its reason form) and Retry buttons, in channels and in App Home."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import BadPayload, Bridge, first_action, from_home, required
from bot.slack.home import publish_home
from bot.slack.ids import ActionId, CallbackId

logger = logging.getLogger(__name__)


def register(app: AsyncApp, bridge: Bridge) -> None:
    """The approval message in a channel and the App Home tab share these handlers."""

    @app.action(ActionId.APPROVE)
    async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user, request_id, channel = decision_fields(body)
        bridge.runner.spawn(
            answer_clicker(
                bridge,
                channel,
                user,
                bridge.workflow.decide_request(request_id, user, approve=True),
                home_client=client if from_home(body) else None,
            ),
            name=f"approve-{request_id}",
        )

    @app.action(ActionId.REJECT)
    async def reject(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user, request_id, channel = decision_fields(body)
        request = await bridge.workflow.db(bridge.workflow.store.get_request, request_id)
        refusal = bridge.workflow.may_decide(request, user) if request else "unknown request"
        if refusal:
            await bridge.tell_clicker(channel, user, f":no_entry: {refusal}")
            return
        try:
            await client.views_open(
                trigger_id=required(body, "trigger_id"),
                view=reject_view(request_id, home=from_home(body)),
            )
        except SlackApiError as exc:
            logger.warning("cannot open the reject form: %s", exc)
            await bridge.tell_clicker(channel, user, ":warning: could not open the form")

    @app.view(CallbackId.REJECT_REASON)
    async def reject_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        user = required(body, "user", "id")
        try:
            meta = json.loads(required(body, "view", "private_metadata"))
            request_id = str(meta["request_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadPayload("the form lost track of its request") from exc
        state = body["view"].get("state", {}).get("values", {})
        reason = (state.get("reason", {}).get("reason", {}).get("value") or "").strip()
        message = await bridge.workflow.decide_request(
            request_id, user, approve=False, reason=reason or None
        )
        if message:
            await ack(response_action="errors", errors={"reason": message})
        else:
            await ack()
            if meta.get("home"):
                bridge.runner.spawn(publish_home(bridge, client, user), name=f"home-{user}")

    @app.action(ActionId.RETRY)
    async def retry(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        user = required(body, "user", "id")
        channel = required(body, "channel", "id")
        try:
            send_id = int(required(first_action(body), "value"))
        except ValueError as exc:
            raise BadPayload("the request from Slack has no valid send id") from exc
        bridge.runner.spawn(
            answer_clicker(bridge, channel, user, bridge.workflow.retry(send_id, user)),
            name=f"retry-{send_id}",
        )


def decision_fields(body: dict[str, Any]) -> tuple[str, str, str | None]:
    """Who clicked, on which request (the button's value), in which channel (None when the
    click came from the App Home tab)."""
    channel = body.get("channel")
    channel_id = channel.get("id") if isinstance(channel, dict) else None
    if from_home(body):
        channel_id = None
    elif not isinstance(channel_id, str) or not channel_id:
        raise BadPayload("the request from Slack has no valid channel.id")
    return required(body, "user", "id"), required(first_action(body), "value"), channel_id


async def answer_clicker(
    bridge: Bridge,
    channel: str | None,
    user: str,
    work: Awaitable[str | None],
    home_client: AsyncWebClient | None = None,
) -> None:
    """Run a click's work and tell the clicker privately if it was refused; a click in the
    Home tab then refreshes it, so decided approvals lose their buttons there too."""
    message = await work
    if message:
        await bridge.tell_clicker(channel, user, f":no_entry: {message}")
    if home_client is not None:
        await publish_home(bridge, home_client, user)


def reject_view(request_id: str, home: bool = False) -> dict[str, Any]:
    """The optional-reason form a Reject click opens."""
    meta: dict[str, Any] = {"request_id": request_id}
    if home:
        meta["home"] = True
    return {
        "type": "modal",
        "callback_id": CallbackId.REJECT_REASON,
        "private_metadata": json.dumps(meta),
        "title": {"type": "plain_text", "text": "Reject text"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason (optional)"},
                "element": {"type": "plain_text_input", "action_id": "reason", "max_length": 500},
            }
        ],
    }
