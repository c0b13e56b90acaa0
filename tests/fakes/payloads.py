"""Interaction payloads shaped as Slack sends them, for tests and the demo to click with.

Shape: https://api.slack.com/reference/interaction-payloads/block-actions-payload
(the fields the app reads; Slack's full samples live in tests/corpus/).
"""

from __future__ import annotations

import json
from typing import Any


def button_click(
    user: str, channel: str, action_id: str, value: str, *, block_id: str = "b"
) -> dict[str, Any]:
    """The ``block_actions`` payload of ``user`` pressing a button on a message in
    ``channel``."""
    return {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel},
        "actions": [
            {"action_id": action_id, "block_id": block_id, "value": value, "type": "button"}
        ],
    }


def reason_submission(opened_view: dict[str, Any] | str, user: str, reason: str) -> dict[str, Any]:
    """The ``view_submission`` of the reject form the app opened (``views.open``'s
    ``view``, JSON or parsed), with ``reason`` typed in by ``user``.
    Shape: https://api.slack.com/reference/interaction-payloads/views#view_submission"""
    view = json.loads(opened_view) if isinstance(opened_view, str) else opened_view
    return {
        "type": "view_submission",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
            },
        },
    }
