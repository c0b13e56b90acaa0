"""Slack output for the send path: posting, updating and private fallbacks.

``SlackReporter`` is the only code that posts to Slack on the bridge's own initiative; it
makes sure an outcome always reaches the requester, by thread, response_url or DM. Its
messages often quote text from outside (SMS texts and replies), so links in them are never
unfurled into previews.
"""

from __future__ import annotations

import ipaddress
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sending.ports import Origin, Posted
from bot.slack.pace import EditPace
from bot.slack.render.blocks import within_text_limit

logger = logging.getLogger(__name__)

SLACK_ERRORS = (SlackApiError, SlackClientError)
Blocks = list[dict[str, Any]]
# A request message's metadata type (https://api.slack.com/metadata/using), and how many of
# a channel's latest messages a resumed request looks through for its own.
REQUEST_EVENT = "sms_bridge_request"
HISTORY_LOOKBACK = 100

# What a dry run's every message says, and what it says instead of claiming a send.
DRY_RUN_BANNER = ":test_tube: _Dry run: nothing is sent to 2Chat._"
_CLAIMS = (("queued by 2Chat", "not sent (dry run)"),)


def dry_run_text(text: str) -> str:
    """A message as a dry run shows it: marked, and never claiming 2Chat queued anything."""
    for claim, truth in _CLAIMS:
        text = text.replace(claim, truth)
    return text if text.endswith(DRY_RUN_BANNER) else f"{text}\n{DRY_RUN_BANNER}"


def _dry_run_blocks(blocks: Blocks | None) -> Blocks | None:
    """Blocks with their first text marked like ``dry_run_text`` (Slack shows the blocks,
    not the text, when there are some)."""
    if not blocks:
        return blocks
    marked = [dict(block) for block in blocks]
    for block in marked:
        inner = block.get("text")
        if isinstance(inner, dict) and isinstance(inner.get("text"), str):
            block["text"] = {**inner, "text": dry_run_text(inner["text"])}
            break
    return marked


# Slack errors that say "not now" rather than "never"
# (https://api.slack.com/methods/chat.postMessage#errors).
_PASSING = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class SlackReporter:
    """Posts and updates messages, falling back to private replies so that nothing a user
    must hear is lost when the bot cannot post in a channel."""

    def __init__(
        self,
        client: AsyncWebClient,
        response_url_hosts: frozenset[str],
        *,
        dry_run: bool = False,
    ) -> None:
        self._client = client
        self._response_url_hosts = response_url_hosts
        self._dry_run = dry_run  # every message says so
        self._pace = EditPace()  # every edit this process makes in a channel, spaced

    def edit_ready(self, channel: str) -> bool:
        """Whether an edit in ``channel`` could go at once (for edits that may be skipped)."""
        return self._pace.ready(channel)

    def edit_turn(self, channel: str) -> AbstractAsyncContextManager[None]:
        """Slack's next edit slot in ``channel`` (``EditPace``); edit inside the block."""
        return self._pace.turn(channel)

    def _marked(self, text: str, blocks: Blocks | None) -> tuple[str, Blocks | None]:
        if not self._dry_run:
            return text, blocks
        return dry_run_text(text), _dry_run_blocks(blocks)

    async def post(
        self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None
    ) -> str | None:
        """Post a message; its ts, or None when Slack refuses (e.g. not_in_channel)."""
        return (await self.try_post(channel, text, blocks=blocks, thread_ts=thread_ts)).ts

    async def try_post(
        self,
        channel: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        request_id: str | None = None,
    ) -> Posted:
        """``post``, also saying whether a refusal may pass (Slack down or busy) or will
        not (not_in_channel, channel_not_found…). ``request_id``: the message is that
        request's, and says so in its metadata (``find_request_message``)."""
        text, blocks = self._marked(text, blocks)
        metadata = (
            None
            if request_id is None
            else {"event_type": REQUEST_EVENT, "event_payload": {"request_id": request_id}}
        )
        try:
            response = await self._client.chat_postMessage(
                channel=channel,
                text=within_text_limit(text),
                blocks=blocks,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                metadata=metadata,
            )
        except SlackApiError as exc:
            logger.info("cannot post in %s: %s", channel, exc)
            answer = exc.response
            status = answer.status_code if answer is not None else 0
            error = answer.get("error") if answer is not None else None
            return Posted(None, status >= 500 or error in _PASSING)
        except SlackClientError as exc:  # no answer at all: Slack unreachable
            logger.info("cannot post in %s: %s", channel, exc)
            return Posted(None, True)
        return Posted(str(response["ts"]), False)

    async def find_request_message(self, channel: str, request_id: str) -> str | None:
        """The ts of a request message posted for ``request_id`` among the channel's latest
        messages (a process that died before it stored the ts left it there), or None.
        https://api.slack.com/methods/conversations.history: newest first, metadata only
        with ``include_all_metadata``."""
        try:
            response = await self._client.conversations_history(
                channel=channel, limit=HISTORY_LOOKBACK, include_all_metadata=True
            )
        except SLACK_ERRORS as exc:
            logger.warning("cannot read the history of %s: %s", channel, exc)
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == REQUEST_EVENT
                and payload.get("request_id") == request_id
            ):
                return str(message["ts"])
        return None

    async def update(self, channel: str, ts: str, text: str, blocks: Blocks | None = None) -> bool:
        text, blocks = self._marked(text, blocks)
        try:
            await self._client.chat_update(
                channel=channel, ts=ts, text=within_text_limit(text), blocks=blocks or []
            )
        except SLACK_ERRORS as exc:
            logger.warning("cannot update message %s in %s: %s", ts, channel, exc)
            return False
        return True

    async def whisper(self, channel: str, user: str, text: str) -> None:
        """An ephemeral message to one user in a channel, or a DM when that fails."""
        try:
            await self._client.chat_postEphemeral(
                channel=channel, user=user, text=within_text_limit(text)
            )
        except SLACK_ERRORS:
            await self.post(user, text)

    def _usable_response_url(self, url: str | None) -> str | None:
        """Only ever POST to Slack's own response URLs: the payload field is untrusted."""
        if not url:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))
        return url if secure and host in self._response_url_hosts else None

    def trusted_response_url(self, url: object) -> str | None:
        return self._usable_response_url(url) if isinstance(url, str) else None

    async def tell_requester(self, origin: Origin, text: str) -> bool:
        """Reach the requester privately: the command's response_url, else a DM; False
        when neither took the message."""
        text, _ = self._marked(text, None)
        url = self._usable_response_url(origin.response_url)
        if url:
            try:
                response = await AsyncWebhookClient(url).send(
                    text=within_text_limit(text),
                    response_type="ephemeral",
                    replace_original=False,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                if response.status_code == 200:
                    return True
                logger.warning("response_url answered %s", response.status_code)
            except Exception as exc:  # network errors of any kind: fall through to the DM
                logger.warning("response_url failed: %s", type(exc).__name__)
        if await self.post(origin.user_id, text) is None:
            logger.error("could not reach %s by any route", origin.user_id)
            return False
        return True
