"""What the bridge's modal forms share: the recipients input, opening a modal, and turning
a submission's problems into the field errors Slack shows under each input."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.model import WILDCARD, Policy, SenderRule
from bot.core.policy import Decision, Refuse, split_targets
from bot.errors import BadPayload, GarbledField
from bot.sending.ports import Origin
from bot.slack.listeners.deps import Bridge
from bot.slack.render.labels import SHOWN_ENTRIES, listing, target_label
from bot.slack.render.refusals import describe_error

# Slack's limits for the fields we fill (Block Kit reference).
MAX_INPUT = 3000
_MAX_HINT = 2000
_MAX_FIELD_ERROR = 500
_LEADING_EMOJI = re.compile(r"^:[a-z0-9_+-]+:\s*")


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def slack_error(exc: SlackClientError) -> str:
    """Slack's error code (e.g. ``expired_trigger_id``), safe to show and to log."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "unknown_error")
    return type(exc).__name__


async def open_view(
    client: AsyncWebClient, trigger_id: str | None, view: dict[str, Any]
) -> str | None:
    """Open a modal; None when open, else why not."""
    if not trigger_id:
        return "no trigger_id from Slack"
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackClientError as exc:
        return slack_error(exc)
    return None


def to_hint(policy: Policy, rule: SenderRule | None) -> str:
    """Who a user with this ``senders`` entry may text, under a recipients field: the first
    names of long lists and how many more, so the hint stays within Slack's limit however
    big the policy is."""
    if rule is None:
        return ""
    if WILDCARD in rule.to:
        hint = "You may text any contact, group or number (except US numbers)."
        if policy.groups:
            hint += f" Groups: {listing(list(policy.groups), most=SHOWN_ENTRIES)}."
        if policy.contacts:
            hint += f" Contacts: {listing(list(policy.contacts), most=SHOWN_ENTRIES)}."
    else:
        masked = policy.defaults.mask_numbers
        targets = [target_label(target, masked) for target in rule.to]
        hint = f"You may text: {listing(targets, most=SHOWN_ENTRIES)}."
    return (hint + " Separate several with commas.")[:_MAX_HINT]


def recipients_block(
    policy: Policy,
    rule: SenderRule | None,
    ids: tuple[str, str],
    label: str,
    placeholder: str,
    to: str,
    *,
    optional: bool = False,
) -> dict[str, Any]:
    """The recipients input of a form, with a hint listing who this user may text;
    ``optional`` when the form has another way to name recipients."""
    block_id, action_id = ids
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "placeholder": plain(placeholder),
    }
    if to:
        element["initial_value"] = to[:MAX_INPUT]
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "optional": optional,
        "element": element,
    }
    hint = to_hint(policy, rule)
    if hint:
        block["hint"] = plain(hint)
    return block


def form_targets(to: str) -> list[str]:
    """The recipients typed in a form: commas, semicolons or new lines separate them."""
    return split_targets(re.sub(r"[;\n]", ",", to))


def field_error(message: str) -> str:
    """A field error is plain text: no leading :emoji:, capitalised, within Slack's cap."""
    message = _LEADING_EMOJI.sub("", message.strip())
    return message[:1].upper() + message[1:_MAX_FIELD_ERROR]


def payload_errors(exc: BadPayload, block_id: str) -> dict[str, str]:
    """A submission Slack sent malformed: under the garbled field, else under ``block_id``."""
    shown_on = exc.block_id if isinstance(exc, GarbledField) else block_id
    return {shown_on: field_error(exc.user_message)}


async def submit_form(
    bridge: Bridge,
    decide: Callable[[], Decision],
    origin: Origin,
    errors_of: Callable[[Refuse], dict[str, str]],
    message_block: str,
) -> dict[str, str] | None:
    """Check a submitted form with the policy and hand it to the core send path; the field
    errors to show, or None to close the form."""
    try:
        decision = decide()
        if isinstance(decision, Refuse):
            return errors_of(decision)
        refusal = await bridge.submit(decision, origin)
    except Exception as exc:  # the form must get an answer; describe_error logs the bug
        return {message_block: field_error(describe_error(exc))}
    return {message_block: field_error(refusal)} if refusal else None


async def answer_form(ack: AsyncAck, errors: dict[str, str] | None) -> None:
    """Ack a submission: field errors keep the form open, no errors close it."""
    if errors:
        await ack(response_action="errors", errors=errors)
    else:
        await ack()
