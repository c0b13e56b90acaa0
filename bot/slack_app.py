"""Slack handlers: parse the payload, ask the domain code, render the answer. Nothing more."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import parse_sms_command
from bot.config import Policy
from bot.errors import BridgeError
from bot.modal import open_compose_modal, register_modal
from bot.policy import Allow, NeedsApproval, Refuse, decide, split_targets
from bot.relay import APPROVAL_REQUIRED, Origin, SendService, SlackReporter, relay
from bot.render import describe_error, help_text, refusal_text
from bot.tasks import TaskRunner

logger = logging.getLogger(__name__)


class BadPayload(BridgeError):
    """A Slack payload without a field we need, or with the wrong type."""


@dataclass
class Bridge:
    """Everything the handlers need, passed in (never module globals)."""

    policy_source: Callable[[], Policy]
    service: SendService
    reporter: SlackReporter
    runner: TaskRunner

    @property
    def policy(self) -> Policy:
        return self.policy_source()

    async def submit(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        """Take an accepted request from any entry point; a refusal text, or None if taken.

        The send itself runs after the caller has answered Slack.
        """
        if isinstance(decision, NeedsApproval):
            return refusal_text(APPROVAL_REQUIRED)
        masked = self.policy.defaults.mask_numbers
        self.runner.spawn(
            relay(decision.plan, origin, self.service, self.reporter, masked),
            name=f"relay-{origin.user_id}",
        )
        return None


def required(payload: dict[str, Any], key: str) -> str:
    """A non-empty string field of an untrusted payload, or BadPayload."""
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"the request from Slack has no valid {key}")
    return value


def build_app(
    bridge: Bridge, client: AsyncWebClient, signing_secret: str | None, socket_mode: bool
) -> AsyncApp:
    """The Bolt app with every listener. Bolt verifies each HTTP request's signature."""
    app = AsyncApp(
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

    register_modal(app, bridge)

    @app.error
    async def on_error(error: Exception) -> None:
        describe_error(error)

    return app


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
    parsed = parse_sms_command(raw_text)
    if parsed.kind == "help":
        await ack(response_type="ephemeral", text=help_text(policy, user_id))
        return
    if parsed.kind == "modal":
        await ack()
        await open_compose_modal(bridge, client, command, parsed)
        return
    decision = decide(policy, user_id, split_targets(parsed.to), parsed.text, parsed.from_name)
    if isinstance(decision, Refuse):
        await ack(response_type="ephemeral", text=refusal_text(decision.reason))
        return
    response_url = command.get("response_url")
    origin = Origin(
        channel_id=channel_id,
        user_id=user_id,
        response_url=response_url if isinstance(response_url, str) else None,
    )
    refusal = await bridge.submit(decision, origin)
    if refusal:
        await ack(response_type="ephemeral", text=refusal)
    else:
        await ack()
