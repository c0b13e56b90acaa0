"""Slack handlers: parse the payload, ask the domain code, render the answer. Nothing more."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import parse_sms_command
from bot.config import Policy
from bot.errors import BridgeError, StoreError
from bot.home import publish_home, register_home
from bot.modal import open_compose_modal, register_modal
from bot.paging import register_paging
from bot.policy import Allow, NeedsApproval, Refuse, decide, split_targets
from bot.relay import Origin, SlackReporter
from bot.render import (
    APPROVE_ACTION,
    REJECT_ACTION,
    RETRY_ACTION,
    STATUS_USAGE,
    describe_error,
    help_text,
    refusal_text,
)
from bot.tasks import TaskRunner
from bot.workflow import Workflow

logger = logging.getLogger(__name__)

REJECT_VIEW = "approval_reject_reason"


class BadPayload(BridgeError):
    """A Slack payload without a field we need, or with the wrong type."""


@dataclass
class Bridge:
    """Everything the handlers need, passed in (never module globals)."""

    policy_source: Callable[[], Policy]
    workflow: Workflow
    reporter: SlackReporter
    runner: TaskRunner

    @property
    def policy(self) -> Policy:
        return self.policy_source()

    async def submit(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        """Take an accepted request from any entry point; a refusal text, or None if taken.

        The send itself runs after the caller has answered Slack. A database outage is a
        refusal like any other: nothing was recorded, so nothing will be sent.
        """
        try:
            return await self.workflow.submit(decision, origin)
        except StoreError as exc:
            logger.warning("request refused, database unavailable: %s", exc)
            return refusal_text(
                "the bridge's database is unavailable right now; try again in a minute"
            )


def required(payload: Any, *path: str) -> str:
    """A non-empty string at ``path`` in an untrusted payload, or BadPayload."""
    value = payload
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise BadPayload(f"the request from Slack has no valid {'.'.join(path)}")
    return value


def first_action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise BadPayload("the request from Slack has no valid actions")
    return actions[0]


def build_app(
    bridge: Bridge, client: AsyncWebClient, signing_secret: str | None, socket_mode: bool
) -> AsyncApp:
    """The Bolt app with every listener. Bolt verifies each HTTP request's signature."""
    # Bolt logs whole request and response bodies at DEBUG, phone numbers included.
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    bolt_logger.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.INFO))
    app = AsyncApp(
        logger=bolt_logger,
        client=client,
        signing_secret=signing_secret or "",
        request_verification_enabled=not socket_mode,
        raise_error_for_unhandled_request=False,
    )

    @app.command("/sms")
    async def sms_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        try:
            await handle_sms_command(bridge, ack, command, client)
        except BadPayload as exc:
            await ack(response_type="ephemeral", text=f":warning: {exc.user_message}")

    # The approval message in a channel and the App Home tab share these two handlers.
    @app.action(APPROVE_ACTION)
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

    @app.action(REJECT_ACTION)
    async def reject(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user, request_id, channel = decision_fields(body)
        request = await bridge.workflow.db(bridge.workflow.store.get_request, request_id)
        refusal = bridge.workflow.may_decide(request, user) if request else "unknown request"
        if refusal:
            await tell_clicker(bridge, channel, user, f":no_entry: {refusal}")
            return
        try:
            await client.views_open(
                trigger_id=required(body, "trigger_id"),
                view=reject_view(request_id, home=from_home(body)),
            )
        except SlackApiError as exc:
            logger.warning("cannot open the reject form: %s", exc)
            await tell_clicker(bridge, channel, user, ":warning: could not open the form")

    @app.view(REJECT_VIEW)
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

    @app.action(RETRY_ACTION)
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

    register_modal(app, bridge)
    register_paging(app, bridge)
    register_home(app, bridge)

    @app.error
    async def on_error(error: Exception) -> None:
        describe_error(error)

    return app


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


def from_home(body: dict[str, Any]) -> bool:
    """Whether an interaction came from the App Home tab."""
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


async def tell_clicker(bridge: Bridge, channel: str | None, user: str, text: str) -> None:
    """Privately: an ephemeral in the channel, or a DM for clicks in the App Home tab."""
    if channel is None:
        await bridge.reporter.post(user, text)
    else:
        await bridge.reporter.whisper(channel, user, text)


async def answer_clicker(
    bridge: Bridge,
    channel: str | None,
    user: str,
    work: Any,
    home_client: AsyncWebClient | None = None,
) -> None:
    """Run a click's work and tell the clicker privately if it was refused; a click in the
    Home tab then refreshes it, so decided approvals lose their buttons there too."""
    message = await work
    if message:
        await tell_clicker(bridge, channel, user, f":no_entry: {message}")
    if home_client is not None:
        await publish_home(bridge, home_client, user)


def reject_view(request_id: str, home: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"request_id": request_id}
    if home:
        meta["home"] = True
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
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


async def handle_sms_command(
    bridge: Bridge, ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
) -> None:
    """``/sms``: answer help and refusals in the ack; acknowledge sends, then relay them."""
    user_id = required(command, "user_id")
    channel_id = required(command, "channel_id")
    raw_text = command.get("text") or ""
    if not isinstance(raw_text, str):
        raise BadPayload("the request from Slack has no valid text")
    policy = bridge.policy
    status_id = status_request(policy, raw_text)
    if status_id is not None:
        await answer_status(bridge, ack, command, status_id)
        return
    parsed = parse_sms_command(raw_text)
    if parsed.kind == "help":
        await ack(response_type="ephemeral", text=await help_for(bridge, user_id))
        return
    if parsed.kind == "modal":
        await ack()
        await open_compose_modal(bridge, client, command, parsed)
        return
    decision = decide(policy, user_id, split_targets(parsed.to), parsed.text, parsed.from_name)
    if isinstance(decision, Refuse):
        await ack(response_type="ephemeral", text=refusal_text(decision.reason))
        return
    origin = Origin(
        channel_id=channel_id,
        user_id=user_id,
        response_url=bridge.reporter.trusted_response_url(command.get("response_url")),
    )
    refusal = await bridge.submit(decision, origin)
    if refusal:
        await ack(response_type="ephemeral", text=refusal)
    else:
        await ack()


def status_request(policy: Policy, raw_text: str) -> str | None:
    """``/sms status <id>``: the id ("" when missing), or None when this is no status
    request (a contact or group named "status" still gets texted)."""
    words = raw_text.split()
    if not words or words[0].lower() != "status" or words[0] in policy.contacts:
        return None
    if words[0] in policy.groups:
        return None
    return words[1] if len(words) == 2 else ""


async def answer_status(
    bridge: Bridge, ack: AsyncAck, command: dict[str, Any], message_id: str
) -> None:
    """Ack at once (asking 2Chat may take longer than Slack waits), then answer privately."""
    if not message_id:
        await ack(response_type="ephemeral", text=STATUS_USAGE)
        return
    await ack()
    origin = Origin(
        channel_id=required(command, "channel_id"),
        user_id=required(command, "user_id"),
        response_url=bridge.reporter.trusted_response_url(command.get("response_url")),
    )

    async def answer() -> None:
        try:
            text = await bridge.workflow.status(message_id, origin.user_id)
        except BridgeError as exc:  # e.g. the database is down: say so rather than nothing
            text = f":warning: Cannot look up `{message_id}` now: {exc.user_message}"
        await bridge.reporter.tell_requester(origin, text)

    bridge.runner.spawn(answer(), name=f"status-{message_id[:40]}")


async def help_for(bridge: Bridge, user_id: str) -> str:
    """``/sms help``, with the opt-out list for people who may send."""
    policy = bridge.policy
    opted_out: list[tuple[str, datetime]] = []
    if policy.rule_for(user_id) is not None or user_id in policy.approvals.approvers:
        try:
            opt_outs = await bridge.workflow.db(bridge.workflow.store.opt_outs)
        except StoreError as exc:  # help must still answer within Slack's 3 seconds
            logger.warning("opt-out list unavailable for /sms help: %s", exc)
            opt_outs = []
        opted_out = [(o.number, o.since) for o in opt_outs]
    return help_text(policy, user_id, opted_out)
