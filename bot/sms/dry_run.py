"""Dry run: everything as usual except that no SMS reaches 2Chat.

For setting up the Slack app, the policy and the approvals without spending credits:
requests are recorded, approved and reported in Slack as usual, and each "sent" SMS gets a
message id that says plainly it was never sent.
"""

from __future__ import annotations

import logging
import uuid

from bot.sms.twochat import TwoChatClient

logger = logging.getLogger(__name__)

DRY_RUN_PREFIX = "DRYRUN-not-sent-"


class DryRunTwoChatClient(TwoChatClient):
    """A 2Chat client whose send never leaves the process; reads still go to 2Chat."""

    async def send_sms(self, from_number: str, to_number: str, text: str) -> str:
        message_id = f"{DRY_RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        logger.info("dry run: SMS of %d characters not sent (%s)", len(text), message_id)
        return message_id
