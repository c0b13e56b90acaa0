"""Dry run: everything as usual except that the bridge never calls 2Chat.

For setting up the Slack app, the policy and the approvals without spending credits (every
2Chat call costs one, reads included): requests are recorded, approved and reported in Slack
as usual, each "sent" SMS gets a message id that says plainly it was never sent, no reply is
ever read, and lookups say 2Chat was not asked.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from bot.errors import TwoChatError
from bot.sms.twochat import Conversation, SmsMessage, TwoChatClient

logger = logging.getLogger(__name__)

DRY_RUN_PREFIX = "DRYRUN-not-sent-"
NOT_ASKED = "dry run: 2Chat was not asked"


class DryRunTwoChatClient(TwoChatClient):
    """A 2Chat client that never leaves the process."""

    dry_run = True

    async def send_sms(self, from_number: str, to_number: str, text: str) -> str:
        message_id = f"{DRY_RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        logger.info("dry run: SMS of %d characters not sent (%s)", len(text), message_id)
        return message_id

    async def account_info(self) -> dict[str, Any]:
        return {}

    async def list_channels(self) -> list[dict[str, Any]]:
        return []

    async def conversations(self, channel_uuid: str) -> list[Conversation]:
        return []

    async def messages(
        self, channel_uuid: str, contact: str, before_ts: int | None = None
    ) -> list[SmsMessage]:
        return []

    async def message(self, uuid: str) -> dict[str, Any]:
        raise TwoChatError(NOT_ASKED)
