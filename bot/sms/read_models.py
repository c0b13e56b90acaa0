"""What 2Chat's read endpoints answer, read defensively: conversations, messages, and the
timestamps and numbers in them (their shapes are undocumented and vary)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Timestamps from 3000 on are garbage (and past 9999 Python's datetime cannot hold them):
# such a message is read as one without a timestamp rather than break reading replies.
LATEST_TIMESTAMP = 32503680000


def epoch_seconds(value: Any) -> int | None:
    """A 2Chat timestamp as whole epoch seconds: seconds or milliseconds, as a number or
    digits, or ISO-8601 text; None when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
            value = float(text)
        else:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            if parsed.tzinfo is None:
                return None
            value = parsed.timestamp()
    if isinstance(value, int | float) and 0 < value < LATEST_TIMESTAMP * 1000:
        seconds = value / 1000 if value > 10**12 else value
        return int(seconds) if seconds < LATEST_TIMESTAMP else None
    return None


def e164(number: str) -> str:
    """A number as 2Chat wrote it, as E.164 for comparisons (spaces dropped, "+" added)."""
    digits = "".join(char for char in number if char.isdigit())
    return f"+{digits}" if digits else number.strip()


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _direction(value: Any, uuid: str | None = None) -> str | None:
    """ "inbound" / "outbound", from the field or else the uuid's SMI/SMO prefix."""
    text = (_text(value) or "").lower()
    if text in ("inbound", "incoming", "in", "received"):
        return "inbound"
    if text in ("outbound", "outgoing", "out", "sent"):
        return "outbound"
    if uuid and uuid.upper().startswith("SMI"):
        return "inbound"
    if uuid and uuid.upper().startswith("SMO"):
        return "outbound"
    return None


@dataclass(frozen=True)
class Conversation:
    """One entry of a channel's conversation list, read defensively.

    ``marker`` captures the last message's state, so a poller can tell a conversation that
    moved from one that did not without reading its messages.
    """

    contact: str
    last_direction: str | None
    last_ts: int | None
    marker: str
    name: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Conversation | None:
        contact = _text(raw.get("contact")) or _text(raw.get("contact_number"))
        contact = contact or _text(raw.get("phone_number"))
        if contact is None:
            return None
        last_ts = epoch_seconds(raw.get("last_message_ts"))
        last_uuid = _text(raw.get("last_message_uuid")) or ""
        direction = _direction(raw.get("last_message_direction"), last_uuid)
        name = _text(raw.get("contact_name")) or _text(raw.get("name"))
        marker = f"{last_ts or ''}|{direction or ''}|{last_uuid}"
        return cls(contact, direction, last_ts, marker, name)


@dataclass(frozen=True)
class SmsMessage:
    """One SMS of a conversation, read defensively."""

    uuid: str
    source: str | None
    destination: str | None
    text: str
    direction: str | None
    timestamp: int | None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> SmsMessage | None:
        uuid = _text(raw.get("uuid")) or _text(raw.get("message_uuid")) or _text(raw.get("id"))
        if uuid is None:
            return None
        text = next((v for v in (raw.get("text"), raw.get("body")) if isinstance(v, str)), "")
        timestamp = epoch_seconds(raw.get("timestamp"))
        if timestamp is None:
            timestamp = epoch_seconds(raw.get("created_at"))
        return cls(
            uuid=uuid,
            source=_text(raw.get("source")) or _text(raw.get("from_number")),
            destination=_text(raw.get("destination")) or _text(raw.get("to_number")),
            text=text,
            direction=_direction(raw.get("direction"), uuid),
            timestamp=timestamp,
        )


def items_of(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``body[key]`` or ``body["data"][key]`` (or a list ``data``): the dicts in it."""
    items: Any = body.get(key)
    data = body.get("data")
    if items is None and isinstance(data, dict):
        items = data.get(key)
    if items is None and isinstance(data, list):
        items = data
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict)]
