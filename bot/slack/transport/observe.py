"""What kind of request Slack sent and on whose behalf, for metrics and log fields.

Read leniently: it runs before Bolt verifies anything, and a malformed body must come out
as "other", never as an error.
"""

from __future__ import annotations

from typing import Any

# Socket Mode envelope types, as the kinds the metrics count.
ENVELOPE_KINDS = {"slash_commands": "command", "interactive": "interaction", "events_api": "event"}


def _id_of(value: Any) -> str | None:
    """A Slack id given as a string or as an object with an ``id``."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def describe(kind: str, payload: Any) -> dict[str, str]:
    """``kind`` (command, interaction, event, other) with the Slack user, channel and
    event type of ``payload`` where it names them."""
    fields = {"kind": kind}
    if not isinstance(payload, dict):
        return fields
    if kind == "command":
        found = {
            "slack_user": payload.get("user_id"),
            "channel": payload.get("channel_id"),
            "event_type": payload.get("command"),
        }
    elif kind == "interaction":
        container = payload.get("container")
        found = {
            "slack_user": _id_of(payload.get("user")),
            "channel": _id_of(payload.get("channel"))
            or (container.get("channel_id") if isinstance(container, dict) else None),
            "event_type": payload.get("type"),
        }
    else:
        event = payload.get("event")
        event = event if isinstance(event, dict) else {}
        found = {
            "slack_user": _id_of(event.get("user")),
            "channel": _id_of(event.get("channel")),
            "event_type": event.get("type") or payload.get("type"),
        }
    fields.update({key: value for key, value in found.items() if isinstance(value, str)})
    return fields


def describe_envelope(envelope_type: str, payload: Any) -> dict[str, str]:
    """``describe`` for a Socket Mode envelope."""
    return describe(ENVELOPE_KINDS.get(envelope_type, "other"), payload)
