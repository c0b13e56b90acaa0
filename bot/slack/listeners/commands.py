"""The ``/sms`` slash command: help, status, the compose modal, and direct sends."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.access import Action, permission
from bot.core.commands import parse_sms_command
from bot.core.model import Policy
from bot.core.policy import Refuse, decide, sender_rule, split_targets
from bot.errors import BadPayload, BridgeError, StoreError
from bot.sending.from_records import outcome_of, plan_of
from bot.sending.ports import Origin
from bot.slack.listeners.compose_modal import open_compose_modal
from bot.slack.listeners.deps import Bridge
from bot.slack.payloads import SlashCommand
from bot.slack.render.outcomes import request_text
from bot.slack.render.refusals import refusal_text
from bot.slack.render.status import request_status_texts
from bot.slack.render.usage import STATUS_USAGE, help_text

logger = logging.getLogger(__name__)

# 2Chat's message ids and the bridge's request ids: letters, digits, "-" and "_". Anything
# else is no id, and is never echoed back into Slack.
_STATUS_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def register(app: AsyncApp, bridge: Bridge) -> None:
    """Listen for ``/sms``; a malformed payload is answered privately, never with a 500."""

    @app.command("/sms")
    async def sms_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        try:
            parsed = SlashCommand.parse(command)
        except BadPayload as exc:
            await ack(response_type="ephemeral", text=f":warning: {exc.user_message}")
            return
        await handle_sms_command(bridge, ack, parsed, client)


async def handle_sms_command(
    bridge: Bridge, ack: AsyncAck, command: SlashCommand, client: AsyncWebClient
) -> None:
    """``/sms``: answer help and refusals in the ack; acknowledge sends, then relay them."""
    policy, user_id = bridge.policy, command.user_id
    status_id = status_request(policy, command.text)
    if status_id is not None:
        await answer_status(bridge, ack, command, status_id)
        return
    names = await bridge.names_in(command.text)
    parsed = parse_sms_command(command.text, policy.defaults.max_segments, names)
    if parsed.kind == "help":
        await ack(response_type="ephemeral", text=await help_for(bridge, user_id))
        return
    if parsed.kind == "modal":
        await ack()
        bridge.runner.spawn(
            open_compose_modal(bridge, client, command, parsed), name=f"modal-{command.user_id}"
        )
        return
    targets = split_targets(parsed.to)
    directory = await bridge.directory()
    decision = decide(policy, user_id, targets, parsed.text, parsed.from_name, directory)
    if isinstance(decision, Refuse):
        masked = policy.defaults.mask_numbers
        await ack(response_type="ephemeral", text=refusal_text(decision.reason, masked))
        return
    refusal = await bridge.submit(decision, requester(bridge, command))
    if refusal:
        await ack(response_type="ephemeral", text=refusal)
    else:
        await ack()


def requester(bridge: Bridge, command: SlashCommand) -> Origin:
    """Where a command's answers go: its channel, and its response_url when it is Slack's."""
    response_url = bridge.reporter.trusted_response_url(command.response_url)
    return Origin(command.channel_id, command.user_id, response_url=response_url)


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
    bridge: Bridge, ack: AsyncAck, command: SlashCommand, message_id: str
) -> None:
    """Ack at once (asking 2Chat may take longer than Slack waits), then answer privately:
    a message id gets what the bridge and 2Chat know of it, a request id every failure."""
    if not _STATUS_ID.fullmatch(message_id):
        await ack(response_type="ephemeral", text=STATUS_USAGE)
        return
    await ack()
    origin = requester(bridge, command)

    async def answer() -> None:
        try:
            if _REQUEST_ID.fullmatch(message_id):
                texts = await request_status(bridge, message_id, origin.user_id)
            else:
                texts = [await bridge.workflow.status(message_id, origin.user_id)]
        except BridgeError as exc:  # e.g. the database is down: say so rather than nothing
            texts = [f":warning: Cannot look up `{message_id}` now: {exc.user_message}"]
        for text in texts:
            await bridge.reporter.tell_requester(origin, text)

    bridge.runner.spawn(answer(), name=f"status-{message_id[:40]}")


async def request_status(bridge: Bridge, request_id: str, user_id: str) -> list[str]:
    """Every failed send of one request (the thread names only the first few), for the
    people who may look up sends; one or more messages."""
    policy, workflow = bridge.policy, bridge.workflow
    verdict = await workflow.may(user_id, Action.STATUS)
    if not verdict.allowed:
        return [f":no_entry: {verdict.sentence()}"]
    request = await bridge.queries.request(request_id)
    if request is None:
        return [f":grey_question: The bridge has no text with id `{request_id}`."]
    sends = await bridge.queries.sends(request_id)
    masked = policy.defaults.mask_numbers
    described = request_text(plan_of(request), masked)
    return request_status_texts(request_id, described, [outcome_of(s) for s in sends], masked)


async def help_for(bridge: Bridge, user_id: str) -> str:
    """``/sms help``, with the opt-out list for people who may send."""
    policy = bridge.policy
    directory = await bridge.directory()
    opted_out: list[tuple[str, datetime]] = []
    if permission(policy, directory, user_id, Action.HELP).allowed:
        try:
            opt_outs = await bridge.queries.opt_outs_before_answer()
        except StoreError as exc:  # help must still answer within Slack's 3 seconds
            logger.warning("opt-out list unavailable for /sms help: %s", exc)
            opt_outs = []
        opted_out = [(o.number, o.since) for o in opt_outs]
    return help_text(policy, sender_rule(policy, user_id, directory), opted_out)
