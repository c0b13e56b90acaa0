"""The ``/sms`` compose modal (SPEC §3, issue 3): compose, preview segments, validate in place.

The view is built by pure functions from the policy and the form's values, so that opening,
live preview and field errors are testable without Slack. The handlers only read Slack's
payload, call those functions and the same policy code as the slash command, and answer.

Nothing in the modal is trusted: the From options are a convenience, and every field is
re-checked with ``decide`` when the form is submitted.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.commands import SmsCommand
from bot.core.model import WILDCARD, Policy
from bot.core.policy import Decision, Refuse, allowed_from_names, decide, split_targets
from bot.core.segments import GSM7_EXTENSION, GSM7_REPLACEMENTS, SegmentInfo, analyze, gsm7_cleanup
from bot.errors import BridgeError
from bot.slack.deps import Bridge
from bot.slack.ids import ActionId, CallbackId
from bot.slack.render import describe_error, show_number
from bot.slack.reporter import Origin

logger = logging.getLogger(__name__)

BLOCK_FROM, ACTION_FROM = "from", ActionId.COMPOSE_FROM
BLOCK_TO, ACTION_TO = "to", ActionId.COMPOSE_TO
BLOCK_TEXT, ACTION_TEXT = "text", ActionId.COMPOSE_TEXT
BLOCK_CLEANUP, ACTION_CLEANUP = "cleanup", ActionId.COMPOSE_CLEANUP
BLOCK_PREVIEW = "preview"
CLEANUP_VALUE = "gsm7"

# Slack's limits for the fields we fill (Block Kit reference).
_MAX_INPUT = 3000
_MAX_OPTION_TEXT = 75
_MAX_HINT = 2000
_MAX_METADATA = 3000
_MAX_FIELD_ERROR = 500
_LEADING_EMOJI = re.compile(r"^:[a-z0-9_+-]+:\s*")


class BadForm(BridgeError):
    """A form payload without a field we need, or with the wrong type; shown on ``field``."""

    def __init__(self, message: str, field: str = BLOCK_TEXT) -> None:
        super().__init__(message)
        self.field = field


class NotASender(BridgeError):
    """The user may not send at all, so there is no form to show them."""


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


@dataclass(frozen=True)
class ComposeValues:
    """The form's fields as typed (or prefilled): nothing here has been checked."""

    from_name: str | None = None
    to: str = ""
    text: str = ""
    cleanup: bool = False


# --- reading untrusted payloads ------------------------------------------------------------


def _web_url(url: object) -> str | None:
    """Keep an http(s) URL of sane length; SlackReporter re-checks the host before using it."""
    if not isinstance(url, str) or len(url) > 1000:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("https", "http") and parts.hostname else None


def parse_metadata(raw: object) -> ComposeMeta:
    """The modal's ``private_metadata``; BadForm when it is missing or not ours."""
    lost = "this form lost track of the channel it was opened from; close it and run /sms again"
    if not isinstance(raw, str) or not raw:
        raise BadForm(lost)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadForm(lost) from exc
    if not isinstance(data, dict):
        raise BadForm(lost)
    channel_id = data.get("channel_id")
    from_name = data.get("from")
    if not isinstance(channel_id, str) or not channel_id:
        raise BadForm(lost)
    return ComposeMeta(
        channel_id=channel_id,
        response_url=_web_url(data.get("response_url")),
        from_name=from_name if isinstance(from_name, str) and from_name else None,
    )


def _garbled(block_id: str) -> BadForm:
    return BadForm(f"the form's {block_id} field arrived garbled; please try again", block_id)


def _element(values: Mapping[str, Any], block_id: str, action_id: str) -> Mapping[str, Any]:
    """One element's state; {} when absent, BadForm when it is not an object."""
    block = values.get(block_id)
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise _garbled(block_id)
    element = block.get(action_id)
    if element is None:
        return {}
    if not isinstance(element, dict):
        raise _garbled(block_id)
    return element


def _text_of(values: Mapping[str, Any], block_id: str, action_id: str) -> str:
    value = _element(values, block_id, action_id).get("value")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _garbled(block_id)
    return value


def _selected_of(values: Mapping[str, Any], block_id: str, action_id: str) -> str | None:
    option = _element(values, block_id, action_id).get("selected_option")
    if option is None:
        return None
    value = option.get("value") if isinstance(option, dict) else None
    if not isinstance(value, str):
        raise _garbled(block_id)
    return value


def _checked_of(values: Mapping[str, Any], block_id: str, action_id: str) -> set[str]:
    options = _element(values, block_id, action_id).get("selected_options")
    if options is None:
        return set()
    if not isinstance(options, list):
        raise _garbled(block_id)
    return {str(option.get("value")) for option in options if isinstance(option, dict)}


def read_values(view: Mapping[str, Any]) -> ComposeValues:
    """The fields of a compose view's ``state``: a missing field is empty, a garbled one
    raises BadForm (never KeyError/TypeError: the payload is untrusted)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict):
        raise BadForm("Slack sent the form without its fields; close it and run /sms again")
    return ComposeValues(
        from_name=_selected_of(values, BLOCK_FROM, ACTION_FROM),
        to=_text_of(values, BLOCK_TO, ACTION_TO),
        text=_text_of(values, BLOCK_TEXT, ACTION_TEXT),
        cleanup=CLEANUP_VALUE in _checked_of(values, BLOCK_CLEANUP, ACTION_CLEANUP),
    )


# --- the preview ---------------------------------------------------------------------------


def outgoing_text(text: str, cleanup: bool) -> str:
    """Exactly the text a submission would send: cleaned up if asked, then trimmed."""
    return (gsm7_cleanup(text) if cleanup else text).strip()


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe_char(char: str) -> str:
    """'“' (U+201C LEFT DOUBLE QUOTATION MARK); invisible characters by code point only."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    label = f"{code} {name}".strip()
    if char.isprintable() and not char.isspace():
        return f"'{_mrkdwn_escape(char)}' ({label})"
    return label


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _numbers_line(info: SegmentInfo) -> str:
    """Encoding (and why), characters used, segments, and what still fits."""
    encoding = f"*{info.encoding}*"
    if info.first_non_gsm:
        encoding += f" because of {describe_char(info.first_non_gsm)}"
    return (
        f"{encoding} · {_plural(info.units, 'character')} · {_plural(info.segments, 'segment')}"
        f" · {info.remaining} left before another segment"
    )


def _cleanup_line(text: str) -> str:
    """What the GSM-7 clean-up changed, so the user sees why the numbers moved."""
    changed = Counter(char for char in text if char in GSM7_REPLACEMENTS)
    if not changed:
        return "GSM-7 clean-up: nothing to replace."
    parts = []
    for char, count in changed.items():
        times = f" ({count} times)" if count > 1 else ""
        replacement = GSM7_REPLACEMENTS[char]
        shown = "a space" if replacement == " " else f"`{replacement}`"
        parts.append(f"{describe_char(char)} → {shown}{times}")
    return "GSM-7 clean-up replaced " + ", ".join(parts) + "."


def _limit_line(info: SegmentInfo, max_segments: int) -> str | None:
    if info.segments > max_segments:
        return (
            f":no_entry: {_plural(info.segments, 'segment')} is over the limit of "
            f"{max_segments}: this text will be refused. Shorten it."
        )
    if info.segments == max_segments:
        return (
            f":warning: At the limit of {_plural(max_segments, 'segment')}: "
            "any longer and the text will be refused."
        )
    return None


def _cleanup_tip(info: SegmentInfo, cleaned: SegmentInfo) -> str | None:
    """Say what ticking the clean-up would save, when it saves anything."""
    tick = f":bulb: Tick *GSM-7 clean-up* to send it as {cleaned.encoding}"
    if cleaned.segments < info.segments:
        return f"{tick} in {_plural(cleaned.segments, 'segment')} instead of {info.segments}."
    if cleaned.encoding != info.encoding:
        room = f"room for {cleaned.remaining} more characters instead of {info.remaining}"
        return f"{tick}, with {room}."
    return None


def preview_text(text: str, cleanup: bool, max_segments: int) -> str:
    """The live preview under the message, computed on exactly what would be sent."""
    sent = outgoing_text(text, cleanup)
    if not sent:
        return "Type a message to see its encoding, length and number of SMS segments."
    info = analyze(sent)
    lines = [_numbers_line(info)]
    extension = sum(1 for char in sent if char in GSM7_EXTENSION)
    if info.encoding == "GSM-7" and extension:
        lines.append(f"{_plural(extension, 'character')} of ^{{}}\\[~]|€ count double.")
    if cleanup:
        lines.append(_cleanup_line(text))
    else:
        tip = _cleanup_tip(info, analyze(outgoing_text(text, True)))
        if tip:
            lines.append(tip)
    limit = _limit_line(info, max_segments)
    if limit:
        lines.append(limit)
    lines.append("Each segment is billed per recipient.")
    return "\n".join(lines)[:_MAX_INPUT]


# --- the view ------------------------------------------------------------------------------


async def open_view(client: AsyncWebClient, trigger_id: object, view: dict[str, Any]) -> str | None:
    """Open a modal with an untrusted trigger_id; None when open, else why not."""
    if not isinstance(trigger_id, str) or not trigger_id:
        return "no trigger_id from Slack"
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackClientError as exc:
        return _slack_error(exc)
    return None


def recipients_block(
    policy: Policy, user_id: str, ids: tuple[str, str], label: str, placeholder: str, to: str
) -> dict[str, Any]:
    """The recipients input of a form (the compose modal and the paging shortcut), with a
    hint listing who this user may text."""
    block_id, action_id = ids
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "placeholder": _plain(placeholder),
    }
    if to:
        element["initial_value"] = to[:_MAX_INPUT]
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
    }
    hint = to_hint(policy, user_id)
    if hint:
        block["hint"] = _plain(hint)
    return block


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def usable_from_names(policy: Policy, user_id: str) -> list[str]:
    """The from-numbers (by name, default first) this user may send from; [] = may not send."""
    rule = policy.rule_for(user_id)
    return allowed_from_names(policy, rule) if rule is not None else []


def to_hint(policy: Policy, user_id: str) -> str:
    """Who this user may text, under the To field."""
    rule = policy.rule_for(user_id)
    if rule is None:
        return ""
    if WILDCARD in rule.to:
        hint = "You may text any contact, group or number (except US numbers)."
        if policy.contacts:
            hint += " Contacts: " + ", ".join(policy.contacts) + "."
        if policy.groups:
            hint += " Groups: " + ", ".join(policy.groups) + "."
    else:
        hint = "You may text: " + ", ".join(rule.to) + "."
    return (hint + " Separate several with commas.")[:_MAX_HINT]


def _from_option(policy: Policy, name: str) -> dict[str, Any]:
    number = show_number(policy.from_numbers[name], policy.defaults.mask_numbers)
    return {"text": _plain(f"{name} ({number})"[:_MAX_OPTION_TEXT]), "value": name}


def _cleanup_option() -> dict[str, Any]:
    return {
        "text": {"type": "mrkdwn", "text": "*GSM-7 clean-up*"},
        "description": {
            "type": "mrkdwn",
            "text": "Replace curly quotes, dashes, ellipses and non-breaking spaces with plain "
            "ones, so one pasted character does not make the text UCS-2 (70 instead of 160 "
            "characters per segment).",
        },
        "value": CLEANUP_VALUE,
    }


def compose_view(
    policy: Policy, user_id: str, values: ComposeValues, meta: ComposeMeta
) -> dict[str, Any]:
    """The whole modal for these values. Block and action ids never change, so Slack keeps
    what the user typed across ``views.update``; raises NotASender for a user with no
    from-number to send from."""
    usable = usable_from_names(policy, user_id)
    if not usable:
        raise NotASender("you are not allowed to send SMS from Slack")
    chosen = next(
        (name for name in (values.from_name, meta.from_name) if name in usable), usable[0]
    )
    from_element: dict[str, Any] = {
        "type": "static_select",
        "action_id": ACTION_FROM,
        "options": [_from_option(policy, name) for name in usable],
        "initial_option": _from_option(policy, chosen),
    }
    text_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ACTION_TEXT,
        "multiline": True,
        "dispatch_action_config": {"trigger_actions_on": ["on_character_entered"]},
        "placeholder": _plain("The text message"),
    }
    if values.text:
        text_element["initial_value"] = values.text[:_MAX_INPUT]
    cleanup_element: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": ACTION_CLEANUP,
        "options": [_cleanup_option()],
    }
    if values.cleanup:
        cleanup_element["initial_options"] = [_cleanup_option()]
    to_block = recipients_block(
        policy, user_id, (BLOCK_TO, ACTION_TO), "To", "alice, db-oncall or +447700900123", values.to
    )
    preview = preview_text(values.text, values.cleanup, policy.defaults.max_segments)
    return {
        "type": "modal",
        "callback_id": CallbackId.COMPOSE,
        "title": _plain("Send an SMS"),
        "submit": _plain("Send"),
        "close": _plain("Cancel"),
        "private_metadata": meta.to_json()[:_MAX_METADATA],
        "blocks": [
            {
                "type": "input",
                "block_id": BLOCK_FROM,
                "label": _plain("From"),
                "element": from_element,
            },
            to_block,
            {
                "type": "input",
                "block_id": BLOCK_TEXT,
                "label": _plain("Message"),
                "dispatch_action": True,
                "element": text_element,
            },
            {
                "type": "input",
                "block_id": BLOCK_CLEANUP,
                "label": _plain("Clean-up"),
                "optional": True,
                "dispatch_action": True,
                "element": cleanup_element,
            },
            {
                "type": "context",
                "block_id": BLOCK_PREVIEW,
                "elements": [{"type": "mrkdwn", "text": preview}],
            },
        ],
    }


# --- submission ----------------------------------------------------------------------------


def decide_submission(policy: Policy, user_id: str, values: ComposeValues) -> Decision:
    """The slash command's policy check, on the submitted fields (cleaned up if ticked)."""
    targets = split_targets(re.sub(r"[;\n]", ",", values.to))
    return decide(
        policy, user_id, targets, outgoing_text(values.text, values.cleanup), values.from_name
    )


def _field_error(message: str) -> str:
    """A field error is plain text: drop a leading :emoji: and cap the length."""
    message = _LEADING_EMOJI.sub("", message.strip())
    return message[:1].upper() + message[1:_MAX_FIELD_ERROR]


def field_errors(refusal: Refuse) -> dict[str, str]:
    """A refusal as ``response_action: errors``; a sender problem shows on the To field."""
    errors: dict[str, str] = {}
    for field, block_id in (("from", BLOCK_FROM), ("text", BLOCK_TEXT)):
        message = refusal.for_field(field)
        if message:
            errors[block_id] = _field_error(message)
    to_messages = [m for m in (refusal.for_field("sender"), refusal.for_field("to")) if m]
    if to_messages:
        errors[BLOCK_TO] = _field_error("; ".join(to_messages))
    return errors or {BLOCK_TEXT: _field_error(refusal.reason or "not allowed")}


def _user_id(body: Mapping[str, Any]) -> str:
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise BadForm("Slack did not say who submitted this form; please try again")
    return user_id


def _view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    view = body.get("view")
    if not isinstance(view, dict):
        raise BadForm("Slack sent the form without its fields; close it and run /sms again")
    return view


async def submit_compose(bridge: Bridge, body: Mapping[str, Any]) -> dict[str, str] | None:
    """Check a submitted form and hand it to the core send path; field errors, or None."""
    try:
        user_id = _user_id(body)
        view = _view(body)
        meta = parse_metadata(view.get("private_metadata"))
        values = read_values(view)
    except BadForm as exc:
        return {exc.field: _field_error(exc.user_message)}
    try:
        decision = decide_submission(bridge.policy, user_id, values)
        if isinstance(decision, Refuse):
            return field_errors(decision)
        origin = Origin(meta.channel_id, user_id, response_url=meta.response_url)
        refusal = await bridge.submit(decision, origin)
    except Exception as exc:  # the modal must get an answer; describe_error logs the bug
        return {BLOCK_TEXT: _field_error(describe_error(exc))}
    return {BLOCK_TEXT: _field_error(refusal)} if refusal else None


# --- Slack handlers ------------------------------------------------------------------------


def _slack_error(exc: SlackClientError) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "unknown_error")
    return type(exc).__name__


async def open_compose_modal(
    bridge: Bridge, client: AsyncWebClient, command: dict[str, Any], parsed: SmsCommand
) -> None:
    """Open the compose modal for a /sms without text (the command is already acked).

    Only in-memory work comes before ``views.open``: the trigger_id expires in 3 seconds.
    """
    user_id = str(command.get("user_id") or "")
    channel_id = str(command.get("channel_id") or "")
    response_url = _web_url(command.get("response_url"))
    origin = Origin(channel_id, user_id, response_url=response_url)
    meta = ComposeMeta(channel_id, response_url, parsed.from_name)
    values = ComposeValues(from_name=parsed.from_name, to=parsed.to)
    try:
        view = compose_view(bridge.policy, user_id, values, meta)
    except NotASender as exc:
        await bridge.reporter.tell_requester(
            origin, f":no_entry: Not sent: {exc.user_message}. Ask an admin to add you."
        )
        return
    error = await open_view(client, command.get("trigger_id"), view)
    if error is None:
        return
    logger.warning("could not open the /sms modal for %s: %s", user_id, error)
    await bridge.reporter.tell_requester(
        origin,
        f":warning: The SMS form could not be opened ({error}). Run `/sms` again, or send "
        "directly with `/sms <to> <text>`.",
    )


async def update_preview(bridge: Bridge, client: AsyncWebClient, body: dict[str, Any]) -> None:
    """Rebuild the modal with a fresh preview after a keystroke or a clean-up toggle.

    A ``hash_conflict`` means a newer update won the race: that one is current, so ignore.
    """
    view = body.get("view")
    if not isinstance(view, dict) or view.get("callback_id") != CallbackId.COMPOSE:
        return
    view_id, view_hash = view.get("id"), view.get("hash")
    try:
        user_id = _user_id(body)
        new_view = compose_view(
            bridge.policy, user_id, read_values(view), parse_metadata(view.get("private_metadata"))
        )
    except (BadForm, NotASender) as exc:
        logger.info("not updating the /sms preview: %s", exc)
        return
    if not isinstance(view_id, str) or not view_id:
        logger.info("not updating the /sms preview: no view id")
        return
    try:
        if isinstance(view_hash, str) and view_hash:
            await client.views_update(view_id=view_id, hash=view_hash, view=new_view)
        else:
            await client.views_update(view_id=view_id, view=new_view)
    except SlackClientError as exc:
        error = _slack_error(exc)
        if error == "hash_conflict":
            logger.debug("preview of %s superseded by a newer update", view_id)
        else:
            logger.warning("could not update the /sms preview of %s: %s", view_id, error)


def register(app: AsyncApp, bridge: Bridge) -> None:
    """Register the modal's action and view_submission listeners."""

    async def on_edit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await update_preview(bridge, client, body)

    app.action(ACTION_TEXT)(on_edit)
    app.action(ACTION_CLEANUP)(on_edit)

    @app.view(CallbackId.COMPOSE)
    async def on_submit(ack: AsyncAck, body: dict[str, Any]) -> None:
        errors = await submit_compose(bridge, body)
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack()
