"""Approve, Reject (with its reason form) and Retry buttons, in channels and in App Home."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BadPayload, StoreError
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.listeners.deps import DATABASE_UNAVAILABLE, Bridge
from bot.slack.listeners.forms import answer_form, open_view
from bot.slack.listeners.home import publish_home
from bot.slack.payloads import BlockAction, ViewSubmission, json_object
from bot.slack.render.retry import parse_retry_value

logger = logging.getLogger(__name__)

_LOST_REQUEST = "the form lost track of its request"


def register(app: AsyncApp, bridge: Bridge) -> None:
    """The approval message in a channel and the App Home tab share these handlers."""

    @app.action(ActionId.APPROVE)
    async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = BlockAction.parse(body)
        request_id, channel, user = action.button_value(), action.answer_channel(), action.user_id
        work = bridge.workflow.decide_request(request_id, user, approve=True)
        home_client = client if action.from_home else None
        bridge.runner.spawn(
            answer_clicker(bridge, channel, user, work, home_client), name=f"approve-{request_id}"
        )

    @app.action(ActionId.REJECT)
    async def reject(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = BlockAction.parse(body)
        bridge.runner.spawn(
            open_reject_form(bridge, client, action), name=f"reject-form-{action.user_id}"
        )

    @app.view(CallbackId.REJECT_REASON)
    async def reject_submitted(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        submission = ViewSubmission.parse(body)
        meta = RejectMeta.from_json(submission.view.private_metadata)
        message = await reject_with_reason(bridge, submission, meta.request_id)
        await answer_form(ack, {BlockId.REJECT_REASON: message} if message else None)
        if not message and meta.home:
            user = submission.user_id
            bridge.runner.spawn(publish_home(bridge, client, user), name=f"home-{user}")

    @app.action(ActionId.RETRY)
    async def retry(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        action = BlockAction.parse(body)
        channel, user = action.answer_channel(), action.user_id
        try:
            send_id, attempts = parse_retry_value(action.button_value())
        except ValueError as exc:
            raise BadPayload("the request from Slack has no valid send id") from exc
        work = bridge.workflow.retry(send_id, user, attempts)
        bridge.runner.spawn(answer_clicker(bridge, channel, user, work), name=f"retry-{send_id}")


async def answer_clicker(
    bridge: Bridge,
    channel: str | None,
    user: str,
    work: Awaitable[str | None],
    home_client: AsyncWebClient | None = None,
) -> None:
    """Run a click's work and tell the clicker privately if it was refused (a database
    outage included: the click was acknowledged at once, so the refusal comes this way); a
    click in the Home tab then refreshes it, so decided approvals lose their buttons too."""
    try:
        message = await work
    except StoreError as exc:
        logger.warning("click not carried out, database unavailable: %s", exc)
        message = DATABASE_UNAVAILABLE
    if message:
        await bridge.tell_clicker(channel, user, f":no_entry: {message}")
    if home_client is not None:
        await publish_home(bridge, home_client, user)


async def open_reject_form(bridge: Bridge, client: AsyncWebClient, action: BlockAction) -> None:
    """A Reject click: the reason form, for someone who may decide this request."""
    request_id, channel, user = action.button_value(), action.answer_channel(), action.user_id
    request = await bridge.queries.request(request_id)
    workflow = bridge.workflow
    refusal = (
        await workflow.may_decide(request, user, approve=False) if request else "unknown request"
    )
    if refusal:
        await bridge.tell_clicker(channel, user, f":no_entry: {refusal}")
        return
    view = reject_view(RejectMeta(request_id, home=action.from_home))
    error = await open_view(client, action.trigger_id, view)
    if error is not None:
        logger.warning("cannot open the reject form: %s", error)
        await bridge.tell_clicker(channel, user, ":warning: could not open the form")


async def reject_with_reason(
    bridge: Bridge, submission: ViewSubmission, request_id: str
) -> str | None:
    """Reject with the reason typed (if any); why it could not be, or None."""
    reason = submission.view.text(BlockId.REJECT_REASON, ActionId.REJECT_REASON).strip()
    return await bridge.workflow.decide_request(
        request_id, submission.user_id, approve=False, reason=reason or None
    )


@dataclass(frozen=True)
class RejectMeta:
    """What the reason form carries in ``private_metadata``: the request, and whether the
    click came from the App Home tab (which then needs a refresh)."""

    request_id: str
    home: bool = False

    def to_json(self) -> str:
        data: dict[str, Any] = {"request_id": self.request_id}
        if self.home:
            data["home"] = True
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | None) -> RejectMeta:
        data = json_object(raw, _LOST_REQUEST)
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise BadPayload(_LOST_REQUEST)
        return cls(request_id, home=bool(data.get("home")))


def reject_view(meta: RejectMeta) -> dict[str, Any]:
    """The optional-reason form a Reject click opens."""
    return {
        "type": "modal",
        "callback_id": CallbackId.REJECT_REASON,
        "private_metadata": meta.to_json(),
        "title": {"type": "plain_text", "text": "Reject text"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": BlockId.REJECT_REASON,
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason (optional)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ActionId.REJECT_REASON,
                    "max_length": 500,
                },
            }
        ],
    }
