"""The send path: re-check the policy, call 2Chat per recipient, report in the Slack thread.

``SendService`` knows 2Chat, ``SlackReporter`` knows Slack; ``relay`` ties one request's
steps together so that its outcome always reaches the requester.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.config import Policy, Recipient
from bot.errors import BridgeError
from bot.phone import mask
from bot.policy import Allow, Refuse, SendPlan, decide
from bot.render import Outcome, describe_error, outcome_text, request_text
from bot.twochat import TwoChatClient

logger = logging.getLogger(__name__)

APPROVAL_REQUIRED = "approval required: an approver must OK this text first"


@dataclass(frozen=True)
class Origin:
    """Where a request came from, and how to reach its requester privately."""

    channel_id: str
    user_id: str
    response_url: str | None = None
    # Set when results belong in an existing thread (a page answering its trigger message).
    thread_ts: str | None = None
    # Set when a delivery may arrive twice (Slack retries): the same key is one request.
    dedupe_key: str | None = None


class SendService:
    """Sends a plan through 2Chat, one call per recipient, a bounded number at a time."""

    def __init__(
        self, policy_source: Callable[[], Policy], twochat: TwoChatClient, concurrency: int = 8
    ) -> None:
        self._policy = policy_source
        self._twochat = twochat
        self._slots = asyncio.Semaphore(concurrency)

    def recheck(self, plan: SendPlan) -> str | None:
        """Authorize again at send time, against the policy as it is now; None means go."""
        decision = decide(
            self._policy(),
            plan.sender,
            [recipient.number for recipient in plan.recipients],
            plan.text,
            plan.from_name,
        )
        if isinstance(decision, Allow):
            return None
        if isinstance(decision, Refuse):
            return decision.reason
        return APPROVAL_REQUIRED

    async def send(self, plan: SendPlan) -> list[Outcome]:
        refusal = self.recheck(plan)
        if refusal:
            return [
                Outcome(recipient, error=f"not sent: {refusal}") for recipient in plan.recipients
            ]
        return list(await asyncio.gather(*(self._send_one(plan, r) for r in plan.recipients)))

    async def _send_one(self, plan: SendPlan, recipient: Recipient) -> Outcome:
        async with self._slots:
            try:
                message_id = await self._twochat.send_sms(
                    plan.from_number, recipient.number, plan.text
                )
            except BridgeError as exc:
                logger.warning("send to %s failed: %s", mask(recipient.number), exc)
                return Outcome(recipient, error=exc.user_message)
        logger.info("send to %s queued as %s", mask(recipient.number), message_id)
        return Outcome(recipient, message_id=message_id)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class SlackReporter:
    """Posts requests and outcomes in Slack, falling back to private replies so that an
    outcome is never lost when the bot cannot post in a channel."""

    def __init__(self, client: AsyncWebClient, response_url_hosts: frozenset[str]) -> None:
        self._client = client
        self._response_url_hosts = response_url_hosts

    async def post_request(self, origin: Origin, text: str) -> str | None:
        """Post the request message in the channel; its ts (the thread), or None if we can't."""
        try:
            response = await self._client.chat_postMessage(
                channel=origin.channel_id, text=text, unfurl_links=False, unfurl_media=False
            )
        except (SlackApiError, SlackClientError) as exc:
            logger.info("cannot post in %s (%s); will answer privately", origin.channel_id, exc)
            return None
        return str(response["ts"])

    async def post_outcome(
        self, origin: Origin, thread_ts: str | None, text: str, context: str
    ) -> None:
        """Reply in the thread; if that fails, tell the requester privately with context."""
        if thread_ts is not None:
            try:
                await self._client.chat_postMessage(
                    channel=origin.channel_id, thread_ts=thread_ts, text=text, unfurl_links=False
                )
                return
            except (SlackApiError, SlackClientError) as exc:
                logger.warning("cannot reply in thread %s: %s", thread_ts, exc)
        await self.tell_requester(origin, f"{context}\n\n{text}")

    def _usable_response_url(self, url: str | None) -> str | None:
        """Only ever POST to Slack's own response URLs: the payload field is untrusted."""
        if not url:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))
        return url if secure and host in self._response_url_hosts else None

    async def tell_requester(self, origin: Origin, text: str) -> None:
        """Reach the requester privately: the command's response_url, else a DM."""
        url = self._usable_response_url(origin.response_url)
        if url:
            try:
                response = await AsyncWebhookClient(url).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
                if response.status_code == 200:
                    return
                logger.warning("response_url answered %s", response.status_code)
            except Exception as exc:  # network errors of any kind: fall through to the DM
                logger.warning("response_url failed: %s", type(exc).__name__)
        try:
            await self._client.chat_postMessage(channel=origin.user_id, text=text)
        except (SlackApiError, SlackClientError) as exc:
            logger.error("could not tell %s the outcome by any route: %s", origin.user_id, exc)


async def relay(
    plan: SendPlan,
    origin: Origin,
    service: SendService,
    reporter: SlackReporter,
    masked: bool,
) -> None:
    """Post the request, send, and post the outcome — the requester hears back whatever fails."""
    context = request_text(plan, masked)
    try:
        thread_ts = await reporter.post_request(origin, context)
        outcomes = await service.send(plan)
        await reporter.post_outcome(origin, thread_ts, outcome_text(outcomes, masked), context)
    except Exception as exc:
        await reporter.tell_requester(origin, f"{context}\n\n:x: {describe_error(exc)}")
        raise
