"""Slack's payloads, parsed once where they arrive into small typed values.

Everything Slack sends is untrusted. A listener parses its body here and passes typed values
on, so no other code reaches into Slack's dicts. A field we need that is missing or of the
wrong type raises ``BadPayload``, whose text is safe to show the user.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.alerts import event_key, text_field
from bot.core.commands import clean_text
from bot.core.directory import USER_ID
from bot.errors import BadPayload, GarbledField

NO_FIELDS = "Slack sent the form without its fields; close it and try again"
NO_SUBMITTER = "Slack did not say who submitted this form; please try again"


def optional(payload: object, *path: str) -> str | None:
    """A non-empty string at ``path`` in an untrusted payload, cleaned as text from Slack
    always is (``clean_text``), or None."""
    value = payload
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return (clean_text(value) or None) if isinstance(value, str) else None


def required(payload: object, *path: str) -> str:
    """A non-empty string at ``path`` in an untrusted payload, or BadPayload."""
    value = optional(payload, *path)
    if value is None:
        raise BadPayload(f"the request from Slack has no valid {'.'.join(path)}")
    return value


def json_object(raw: str | None, lost: str) -> dict[str, Any]:
    """The JSON object a form keeps in its ``private_metadata``; BadPayload(lost) when it is
    missing or not ours."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError as exc:
        raise BadPayload(lost) from exc
    if not isinstance(data, dict):
        raise BadPayload(lost)
    return data


@dataclass(frozen=True)
class SlashCommand:
    """A ``/sms`` invocation."""

    user_id: str
    channel_id: str
    text: str
    response_url: str | None  # untrusted: the reporter checks its host before using it
    trigger_id: str | None

    @classmethod
    def parse(cls, command: Mapping[str, Any]) -> SlashCommand:
        user_id, channel_id = required(command, "user_id"), required(command, "channel_id")
        text = command.get("text") or ""
        if not isinstance(text, str):
            raise BadPayload("the request from Slack has no valid text")
        return cls(
            user_id,
            channel_id,
            clean_text(text),
            response_url=optional(command, "response_url"),
            trigger_id=optional(command, "trigger_id"),
        )


@dataclass(frozen=True)
class View:
    """A modal or Home tab as Slack sends it back, with what the user has entered so far."""

    id: str | None
    hash: str | None
    type: str | None
    callback_id: str | None
    private_metadata: str | None
    values: Mapping[str, Any] | None  # ``state.values``; None when Slack sent none

    @classmethod
    def parse(cls, raw: object) -> View:
        if not isinstance(raw, dict):
            raise BadPayload(NO_FIELDS)
        state = raw.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        return cls(
            id=optional(raw, "id"),
            hash=optional(raw, "hash"),
            type=optional(raw, "type"),
            callback_id=optional(raw, "callback_id"),
            private_metadata=optional(raw, "private_metadata"),
            values=values if isinstance(values, dict) else None,
        )

    def _element(self, block_id: str, action_id: str) -> Mapping[str, Any]:
        """One input's state: {} when absent, GarbledField when it is not an object."""
        if self.values is None:
            raise BadPayload(NO_FIELDS)
        block = self.values.get(block_id)
        if block is None:
            return {}
        if not isinstance(block, dict):
            raise GarbledField(block_id)
        element = block.get(action_id)
        if element is None:
            return {}
        if not isinstance(element, dict):
            raise GarbledField(block_id)
        return element

    def text(self, block_id: str, action_id: str) -> str:
        """A text input's value; "" when empty."""
        value = self._element(block_id, action_id).get("value")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise GarbledField(block_id)
        return clean_text(value)

    def selected(self, block_id: str, action_id: str) -> str | None:
        """A select's chosen option value, or None."""
        option = self._element(block_id, action_id).get("selected_option")
        if option is None:
            return None
        value = option.get("value") if isinstance(option, dict) else None
        if not isinstance(value, str):
            raise GarbledField(block_id)
        return value

    def users(self, block_id: str, action_id: str) -> tuple[str, ...]:
        """A users select's chosen Slack user ids; anything else there is GarbledField, since
        the ids become recipients."""
        users = self._element(block_id, action_id).get("selected_users")
        if users is None:
            return ()
        if not isinstance(users, list) or not all(
            isinstance(user, str) and USER_ID.fullmatch(user) for user in users
        ):
            raise GarbledField(block_id)
        return tuple(users)

    def checked(self, block_id: str, action_id: str) -> frozenset[str]:
        """The values of a checkbox group's ticked options."""
        options = self._element(block_id, action_id).get("selected_options")
        if options is None:
            return frozenset()
        if not isinstance(options, list):
            raise GarbledField(block_id)
        return frozenset(str(option.get("value")) for option in options if isinstance(option, dict))


@dataclass(frozen=True)
class BlockAction:
    """A click (or keystroke) on a message, in a modal or in the App Home tab."""

    user_id: str
    channel_id: str | None  # None in a modal or the App Home tab
    value: str | None  # the element's value: a button's, or the text typed so far
    trigger_id: str | None
    view: View | None  # the modal or Home tab it happened in; None on a message

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> BlockAction:
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise BadPayload("the request from Slack has no valid actions")
        view = body.get("view")
        return cls(
            user_id=required(body, "user", "id"),
            channel_id=optional(body, "channel", "id"),
            value=optional(actions[0], "value"),
            trigger_id=optional(body, "trigger_id"),
            view=View.parse(view) if isinstance(view, dict) else None,
        )

    @property
    def from_home(self) -> bool:
        return self.view is not None and self.view.type == "home"

    def button_value(self) -> str:
        """The clicked button's value, which every button of ours carries."""
        if self.value is None:
            raise BadPayload("the request from Slack has no valid value")
        return self.value

    def answer_channel(self) -> str | None:
        """Where to answer the clicker privately: the channel, or None (a DM) in App Home."""
        if self.from_home:
            return None
        if self.channel_id is None:
            raise BadPayload("the request from Slack has no valid channel.id")
        return self.channel_id


@dataclass(frozen=True)
class ViewSubmission:
    """A submitted modal: who submitted it, and the view with its fields."""

    user_id: str
    view: View

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> ViewSubmission:
        user_id = optional(body, "user", "id")
        if user_id is None:
            raise BadPayload(NO_SUBMITTER)
        return cls(user_id, View.parse(body.get("view")))


def event_of(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``event`` object of an Events API callback, or BadPayload."""
    event = body.get("event")
    if not isinstance(event, dict):
        raise BadPayload("the request from Slack has no valid event")
    return event


@dataclass(frozen=True)
class MessageEvent:
    """A ``message`` or ``app_mention`` event: where, by whom, and what was written."""

    channel_id: str
    ts: str
    thread_ts: str  # the thread it belongs to: its own ts for a top-level message
    user_id: str | None  # None for an integration's post
    text: str
    dedupe_key: str  # the same however often Slack delivers the event

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> MessageEvent:
        event = event_of(body)
        ts = required(event, "ts")
        return cls(
            channel_id=required(event, "channel"),
            ts=ts,
            thread_ts=optional(event, "thread_ts") or ts,
            user_id=optional(event, "user"),
            text=text_field(event.get("text")),
            dedupe_key=event_key(body, event),
        )


@dataclass(frozen=True)
class MessageShortcut:
    """A message shortcut used on one message: by whom, on what, and how to answer."""

    user_id: str
    channel_id: str
    ts: str
    thread_ts: str  # the thread the message is in: its own ts for a top-level message
    message: Mapping[str, Any]  # the message itself, read as an alert for its text
    team_domain: str | None
    response_url: str | None  # untrusted: the reporter checks its host before using it
    trigger_id: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> MessageShortcut:
        raw = body.get("message")
        message: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        user_id, channel_id = required(body, "user", "id"), required(body, "channel", "id")
        ts = optional(message, "ts") or required(body, "message_ts")
        return cls(
            user_id,
            channel_id,
            ts,
            thread_ts=optional(message, "thread_ts") or ts,
            message=message,
            team_domain=optional(body, "team", "domain"),
            response_url=optional(body, "response_url"),
            trigger_id=optional(body, "trigger_id"),
        )


@dataclass(frozen=True)
class ReactionAdded:
    """A ``reaction_added`` event on a message: who reacted with what, and where."""

    user_id: str
    reaction: str
    channel_id: str
    ts: str
    dedupe_key: str  # the same however often Slack delivers the event

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> ReactionAdded:
        event = event_of(body)
        return cls(
            user_id=required(event, "user"),
            reaction=required(event, "reaction"),
            channel_id=required(event, "item", "channel"),
            ts=required(event, "item", "ts"),
            dedupe_key=event_key(body, event),
        )
