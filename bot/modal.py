"""The /sms compose modal (issue 3): stub until implemented."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import SmsCommand

if TYPE_CHECKING:
    from bot.slack_app import Bridge


async def open_compose_modal(
    bridge: Bridge, client: AsyncWebClient, command: dict[str, Any], parsed: SmsCommand
) -> None:
    """Open the compose modal for a /sms without text (the command is already acked)."""


def register_modal(app: AsyncApp, bridge: Bridge) -> None:
    """Register the modal's action and view_submission listeners."""
