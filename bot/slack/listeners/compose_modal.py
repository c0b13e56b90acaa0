"""The ``/sms`` compose modal: compose, preview segments, validate in place.

The view is built by pure functions from the policy and the form's values, so that opening,
live preview and field errors are testable without Slack. The handlers only parse Slack's
payload, call those functions and the same policy code as the slash command, and answer.

Nothing in the modal is trusted: the From options are a convenience, and every field is
re-checked with ``decide`` when the form is submitted.

Slack allows 100 options in a select, so a user with more from-numbers gets a type-ahead
select whose options this app serves as they type (Slack's options load URL, which is the
same /slack/events endpoint).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.access import Action
from bot.core.commands import SmsCommand
from bot.core.directory import EMPTY_DIRECTORY, Directory, user_mention
from bot.core.model import Policy
from bot.core.policy import Decision, Field, Refuse, allowed_from_names, decide, sender_rule
from bot.core.preview import outgoing_text, preview_text
from bot.errors import BadPayload, NotASender
from bot.sending.ports import Origin
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.listeners.deps import Bridge
from bot.slack.listeners.forms import (
    MAX_INPUT,
    answer_form,
    field_error,
    form_targets,
    open_view,
    payload_errors,
    plain,
    recipients_block,
    slack_error,
    submit_form,
)
from bot.slack.payloads import (
    BlockAction,
    SlashCommand,
    View,
    ViewSubmission,
    json_object,
    optional,
)
from bot.slack.render.escaping import show_number

logger = logging.getLogger(__name__)

CLEANUP_VALUE = "gsm7"

# Slack's limits for the fields we fill (Block Kit reference).
MAX_OPTIONS = 100
_MAX_OPTION_TEXT = 75
_MAX_METADATA = 3000
_NUMBER_LIKE = re.compile(r"[\d\s+().-]*\d[\d\s+().-]*")
_LOST_CHANNEL = (
    "this form lost track of the channel it was opened from; close it and run /sms again"
)


def _web_url(url: object) -> str | None:
    """Keep an http(s) URL of sane length; SlackReporter re-checks the host before using it."""
    if not isinstance(url, str) or len(url) > 1000:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("https", "http") and parts.hostname else None


@dataclass(frozen=True)
class ComposeMeta:
    """What the modal carries in ``private_metadata``: where it was opened from."""

    channel_id: str
    response_url: str | None = None
    from_name: str | None = None

    def to_json(self) -> str:
        data: dict[str, str] = {"channel_id": self.channel_id}
        if self.response_url:
            data["response_url"] = self.response_url
        if self.from_name:
            data["from"] = self.from_name
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> ComposeMeta:
        """The modal's ``private_metadata``; BadPayload when it is missing or not ours."""
        data = json_object(raw, _LOST_CHANNEL)
        channel_id = data.get("channel_id")
        if not isinstance(channel_id, str) or not channel_id:
            raise BadPayload(_LOST_CHANNEL)
        from_name = data.get("from")
        return cls(
            channel_id=channel_id,
            response_url=_web_url(data.get("response_url")),
            from_name=from_name if isinstance(from_name, str) and from_name else None,
        )


@dataclass(frozen=True)
class ComposeValues:
    """The form's fields as typed (or prefilled): nothing here has been checked."""

    from_name: str | None = None
    to: str = ""
    text: str = ""
    cleanup: bool = False
    people: tuple[str, ...] = ()  # Slack user ids picked in the people select


def read_values(view: View) -> ComposeValues:
    """The fields of a compose view: a missing field is empty, a garbled one BadPayload."""
    return ComposeValues(
        from_name=view.selected(BlockId.COMPOSE_FROM, ActionId.COMPOSE_FROM),
        to=view.text(BlockId.COMPOSE_TO, ActionId.COMPOSE_TO),
        text=view.text(BlockId.COMPOSE_TEXT, ActionId.COMPOSE_TEXT),
        cleanup=CLEANUP_VALUE in view.checked(BlockId.COMPOSE_CLEANUP, ActionId.COMPOSE_CLEANUP),
        people=view.users(BlockId.COMPOSE_PEOPLE, ActionId.COMPOSE_PEOPLE),
    )


# --- the view ------------------------------------------------------------------------------


def usable_from_names(
    policy: Policy, user_id: str, directory: Directory = EMPTY_DIRECTORY
) -> list[str]:
    """The from-numbers (by name, default first) this user may send from; [] = may not send.
    ``directory`` has the user groups a sender may be in."""
    rule = sender_rule(policy, user_id, directory)
    return allowed_from_names(policy, rule) if rule is not None else []


def _from_label(policy: Policy, name: str) -> str:
    number = show_number(policy.from_numbers[name], policy.defaults.mask_numbers)
    return f"{name} ({number})"


def _from_option(policy: Policy, name: str) -> dict[str, Any]:
    return {"text": plain(_from_label(policy, name)[:_MAX_OPTION_TEXT]), "value": name}


def _from_block(policy: Policy, usable: list[str], chosen: str) -> dict[str, Any]:
    """A select of the usable from-numbers; over Slack's 100 options, a type-ahead one
    whose options ``from_options`` serves."""
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": ActionId.COMPOSE_FROM,
        "initial_option": _from_option(policy, chosen),
    }
    block = {
        "type": "input",
        "block_id": BlockId.COMPOSE_FROM,
        "label": plain("From"),
        "element": element,
    }
    if len(usable) <= MAX_OPTIONS:
        element["options"] = [_from_option(policy, name) for name in usable]
    else:
        element.update(type="external_select", min_query_length=0)
        block["hint"] = plain(f"{len(usable)} numbers: type part of a name or number to find one.")
    return block


def from_options(policy: Policy, user_id: str, typed: str) -> list[dict[str, Any]]:
    """The From options matching what the user typed, in a name or in the number as it is
    shown (a masked number's hidden digits find nothing); at most Slack's 100."""
    wanted = typed.strip().lower()
    if _NUMBER_LIKE.fullmatch(wanted):  # "+44 20 7946": match digits, whatever the spacing
        wanted = re.sub(r"\D", "", wanted)
    found: list[dict[str, Any]] = []
    for name in usable_from_names(policy, user_id):
        label = _from_label(policy, name)
        number = show_number(policy.from_numbers[name], policy.defaults.mask_numbers)
        if wanted in label.lower() or wanted in re.sub(r"\D", "", number):
            found.append(_from_option(policy, name))
            if len(found) == MAX_OPTIONS:
                break
    return found


def _message_block(text: str) -> dict[str, Any]:
    """The message input; every keystroke dispatches an action, for the live preview."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ActionId.COMPOSE_TEXT,
        "multiline": True,
        "dispatch_action_config": {"trigger_actions_on": ["on_character_entered"]},
        "placeholder": plain("The text message"),
    }
    if text:
        element["initial_value"] = text[:MAX_INPUT]
    return {
        "type": "input",
        "block_id": BlockId.COMPOSE_TEXT,
        "label": plain("Message"),
        "dispatch_action": True,
        "element": element,
    }


def _cleanup_option() -> dict[str, Any]:
    """The tick box; its description stays within Slack's 75 characters for an option
    (Slack refuses the whole form otherwise), so the why is the block's hint."""
    return {
        "text": {"type": "mrkdwn", "text": "*GSM-7 clean-up*"},
        "description": plain("Plain quotes, dashes, dots and spaces instead of fancy ones"),
        "value": CLEANUP_VALUE,
    }


def _cleanup_block(ticked: bool) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": ActionId.COMPOSE_CLEANUP,
        "options": [_cleanup_option()],
    }
    if ticked:
        element["initial_options"] = [_cleanup_option()]
    return {
        "type": "input",
        "block_id": BlockId.COMPOSE_CLEANUP,
        "label": plain("Clean-up"),
        "hint": plain(
            "Replaces curly quotes, dashes, ellipses and non-breaking spaces with plain ones, "
            "so one pasted character does not make the text UCS-2 (70 instead of 160 "
            "characters per segment)."
        ),
        "optional": True,
        "dispatch_action": True,
        "element": element,
    }


def _people_block() -> dict[str, Any]:
    """Slack people to text, picked by name: each must be a contact linked to their user."""
    return {
        "type": "input",
        "block_id": BlockId.COMPOSE_PEOPLE,
        "label": plain("To people in Slack"),
        "optional": True,
        "element": {
            "type": "multi_users_select",
            "action_id": ActionId.COMPOSE_PEOPLE,
            "placeholder": plain("Pick people"),
        },
    }


def compose_view(
    policy: Policy,
    user_id: str,
    values: ComposeValues,
    meta: ComposeMeta,
    directory: Directory = EMPTY_DIRECTORY,
) -> dict[str, Any]:
    """The whole modal for these values. Block and action ids never change, so Slack keeps
    what the user typed across ``views.update``; raises NotASender for a user with no
    from-number to send from."""
    usable = usable_from_names(policy, user_id, directory)
    if not usable:
        raise NotASender("you are not allowed to send SMS from Slack")
    chosen = next(
        (name for name in (values.from_name, meta.from_name) if name in usable), usable[0]
    )
    preview = preview_text(values.text, values.cleanup, policy.defaults.max_segments)
    return {
        "type": "modal",
        "callback_id": CallbackId.COMPOSE,
        "title": plain("Send an SMS"),
        "submit": plain("Send"),
        "close": plain("Cancel"),
        "private_metadata": meta.to_json()[:_MAX_METADATA],
        "blocks": [
            _from_block(policy, usable, chosen),
            recipients_block(
                policy,
                sender_rule(policy, user_id, directory),
                (BlockId.COMPOSE_TO, ActionId.COMPOSE_TO),
                "To",
                "alice, db-oncall or +447700900123",
                values.to,
                optional=True,
            ),
            _people_block(),
            _message_block(values.text),
            _cleanup_block(values.cleanup),
            {
                "type": "context",
                "block_id": BlockId.COMPOSE_PREVIEW,
                "elements": [{"type": "mrkdwn", "text": preview[:MAX_INPUT]}],
            },
        ],
    }


# --- submission ----------------------------------------------------------------------------


def decide_submission(
    policy: Policy,
    user_id: str,
    values: ComposeValues,
    directory: Directory = EMPTY_DIRECTORY,
) -> Decision:
    """The slash command's policy check, on the submitted fields (cleaned up if ticked):
    the typed recipients and the people picked, as mentions."""
    text = outgoing_text(values.text, values.cleanup)
    targets = form_targets(values.to) + [user_mention(user) for user in values.people]
    return decide(policy, user_id, targets, text, values.from_name, directory)


_FIELD_BLOCKS: tuple[tuple[Field, str], ...] = (
    ("from", BlockId.COMPOSE_FROM),
    ("text", BlockId.COMPOSE_TEXT),
)


def field_errors(refusal: Refuse) -> dict[str, str]:
    """A refusal as ``response_action: errors``; a sender problem shows on the To field."""
    errors: dict[str, str] = {}
    for field, block_id in _FIELD_BLOCKS:
        message = refusal.for_field(field)
        if message:
            errors[block_id] = field_error(message)
    to_messages = [m for m in (refusal.for_field("sender"), refusal.for_field("to")) if m]
    if to_messages:
        errors[BlockId.COMPOSE_TO] = field_error("; ".join(to_messages))
    return errors or {BlockId.COMPOSE_TEXT: field_error(refusal.reason or "not allowed")}


async def submit_compose(bridge: Bridge, body: Mapping[str, Any]) -> dict[str, str] | None:
    """Check a submitted form and hand it to the core send path; field errors, or None."""
    try:
        submission = ViewSubmission.parse(body)
        meta = ComposeMeta.from_json(submission.view.private_metadata)
        values = read_values(submission.view)
    except BadPayload as exc:
        return payload_errors(exc, BlockId.COMPOSE_TEXT)
    user_id = submission.user_id
    # Slack may deliver one submission more than once; the view id names it.
    dedupe_key = f"view:{submission.view.id}" if submission.view.id else None
    origin = Origin(meta.channel_id, user_id, response_url=meta.response_url, dedupe_key=dedupe_key)
    directory = await bridge.directory()
    return await submit_form(
        bridge,
        lambda: decide_submission(bridge.policy, user_id, values, directory),
        origin,
        field_errors,
        BlockId.COMPOSE_TEXT,
    )


# --- Slack handlers ------------------------------------------------------------------------


async def open_compose_modal(
    bridge: Bridge, client: AsyncWebClient, command: SlashCommand, parsed: SmsCommand
) -> None:
    """Open the compose modal for a /sms without text (the command is already acked).

    Only in-memory work comes before ``views.open``: the trigger_id expires in 3 seconds.
    """
    response_url = _web_url(command.response_url)
    origin = Origin(command.channel_id, command.user_id, response_url=response_url)
    meta = ComposeMeta(command.channel_id, response_url, parsed.from_name)
    values = ComposeValues(from_name=parsed.from_name, to=parsed.to)
    verdict = await bridge.workflow.may(command.user_id, Action.SEND)
    if verdict.answer == "unknown":
        await bridge.reporter.tell_requester(origin, f":warning: {verdict.refusal()}.")
        return
    try:
        directory = await bridge.directory()
        view = compose_view(bridge.policy, command.user_id, values, meta, directory)
    except NotASender as exc:
        await bridge.reporter.tell_requester(
            origin, f":no_entry: Not sent: {exc.user_message}. Ask an admin to add you."
        )
        return
    error = await open_view(client, command.trigger_id, view)
    if error is None:
        return
    logger.warning("could not open the /sms modal for %s: %s", command.user_id, error)
    await bridge.reporter.tell_requester(
        origin,
        f":warning: The SMS form could not be opened ({error}). Run `/sms` again, or send "
        "directly with `/sms <to> <text>`.",
    )


async def update_preview(bridge: Bridge, client: AsyncWebClient, action: BlockAction) -> None:
    """Rebuild the modal with a fresh preview after a keystroke or a clean-up toggle.

    A ``hash_conflict`` means a newer update won the race: that one is current, so ignore.
    """
    view = action.view
    if view is None or view.callback_id != CallbackId.COMPOSE:
        return
    try:
        meta = ComposeMeta.from_json(view.private_metadata)
        values, directory = read_values(view), await bridge.directory()
        new_view = compose_view(bridge.policy, action.user_id, values, meta, directory)
    except (BadPayload, NotASender) as exc:
        logger.info("not updating the /sms preview: %s", exc)
        return
    if view.id is None:
        logger.info("not updating the /sms preview: no view id")
        return
    try:
        await client.views_update(view_id=view.id, hash=view.hash, view=new_view)
    except SlackClientError as exc:
        error = slack_error(exc)
        if error == "hash_conflict":
            logger.debug("preview of %s superseded by a newer update", view.id)
        else:
            logger.warning("could not update the /sms preview of %s: %s", view.id, error)


def register(app: AsyncApp, bridge: Bridge) -> None:
    """Register the modal's action and view_submission listeners."""

    async def on_edit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            action = BlockAction.parse(body)
        except BadPayload as exc:
            logger.info("not updating the /sms preview: %s", exc)
            return
        bridge.runner.spawn(
            update_preview(bridge, client, action), name=f"preview-{action.user_id}"
        )

    app.action(ActionId.COMPOSE_TEXT)(on_edit)
    app.action(ActionId.COMPOSE_CLEANUP)(on_edit)

    @app.options(ActionId.COMPOSE_FROM)
    async def on_from_typed(ack: AsyncAck, body: dict[str, Any]) -> None:
        user_id = optional(body, "user", "id")
        typed = optional(body, "value") or ""
        await ack(options=from_options(bridge.policy, user_id, typed) if user_id else [])

    @app.view(CallbackId.COMPOSE)
    async def on_submit(ack: AsyncAck, body: dict[str, Any]) -> None:
        await answer_form(ack, await submit_compose(bridge, body))
