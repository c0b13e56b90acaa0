"""Where a reply SMS is shown in Slack, and whether Slack took it.

The poller (``bot.sending.replies``) acts on an SMS, then posts it here: into the thread of
the request that texted the number, privately to the requester when the thread cannot be
posted in, or to the unknown-numbers channel. A post that no route took is reported back
(False), so the SMS stays pending and is posted at a later poll instead of being lost to a
Slack outage.
"""

from __future__ import annotations

import logging

from bot.core.model import Policy, Recipient
from bot.core.phone import mask
from bot.sending.from_records import origin_of
from bot.sending.ports import Reporter
from bot.sending.roles import PolicySource, Wording
from bot.store import PendingInbound, StoredRequest

logger = logging.getLogger(__name__)


class ReplyPosts:
    """Posts replies in Slack for the poller."""

    def __init__(self, policy: PolicySource, words: Wording, reporter: Reporter) -> None:
        self._policy_source = policy
        self._words = words
        self._reporter = reporter

    @property
    def policy(self) -> Policy:
        return self._policy_source()

    async def post(
        self, pending: PendingInbound, request: StoredRequest | None, note: str | None
    ) -> bool:
        """The SMS, with a note, where its reply goes: the request's thread, or the channel
        for numbers not texted lately; False when Slack took it by no route."""
        sender = self._sender(pending.contact, request, pending.name)
        if request is None:
            return await self._post_unknown(sender, pending.from_number, pending.text, note)
        return await self._post_reply(request, sender, pending.text, note)

    def _sender(
        self, contact: str, request: StoredRequest | None, conversation_name: str | None
    ) -> Recipient:
        """The replier with a name: the policy's contact name, the name the request used,
        or the name 2Chat has for the conversation."""
        name = self.policy.contact_name(contact)
        if name is None and request is not None:
            name = next((r.name for r in request.recipients if r.number == contact), None)
        return Recipient(contact, name or conversation_name)

    async def _post_reply(
        self, request: StoredRequest, sender: Recipient, text: str, note: str | None
    ) -> bool:
        """Into the request's thread; privately to the requester when that is impossible."""
        reporter = self._reporter
        body = self._words.present.reply_text(sender, text, self._words.masked(), note)
        if request.thread_ts and await reporter.post(
            request.channel_id, body, thread_ts=request.thread_ts
        ):
            return True
        context = self._words.describe(request)
        return await reporter.tell_requester(origin_of(request), f"{context}\n\n{body}")

    async def _post_unknown(
        self, sender: Recipient, from_number: str, text: str, note: str | None
    ) -> bool:
        """A message from a number not texted within the window: to the configured channel,
        or dropped (logged with the number masked)."""
        channel = self.policy.replies.unknown_numbers_channel
        if channel is None:
            logger.info("SMS from %s (not texted lately) dropped", mask(sender.number))
            return True
        from_name = next(
            (name for name, number in self.policy.from_numbers.items() if number == from_number),
            None,
        )
        number = self._words.present.show_number(from_number, self._words.masked())
        from_label = f"{from_name} ({number})"
        body = self._words.present.unknown_reply_text(
            sender, from_label, text, self._words.masked()
        )
        return await self._reporter.post(channel, f"{body}\n{note}" if note else body) is not None
