"""Requests signed exactly as Slack signs them (v0 HMAC-SHA256 of "v0:ts:body")."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
_TRIGGERS = itertools.count(13345224609)


def signed_headers(
    body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def slash_command_body(
    text: str, user_id: str, channel_id: str, response_url: str, command: str = "/sms", **extra: str
) -> str:
    fields = {
        "token": "legacy-unused",
        "team_id": "T0TEAM",
        "team_domain": "test",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A0APP",
        "response_url": response_url,
        "trigger_id": new_trigger_id(),
        **extra,
    }
    return urlencode(fields)


def new_trigger_id() -> str:
    """Slack gives every command and interaction its own trigger_id, so no two deliveries
    have the same body (only a replay does)."""
    return f"{next(_TRIGGERS)}.738474920.{secrets.token_hex(16)}"


def interaction_body(payload: dict[str, Any]) -> str:
    payload = {"trigger_id": new_trigger_id(), **payload}
    return urlencode({"payload": json.dumps(payload)})


def event_body(event: object, event_id: str) -> str:
    """An Events API callback as Slack sends it (JSON, from the stand-in workspace); the
    event may be of any shape, for tests of malformed ones."""
    return json.dumps(
        {
            "token": "legacy-unused",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1800000000,
            "authorizations": [{"team_id": "T0TEAM", "user_id": "UBOT", "is_bot": True}],
        }
    )
