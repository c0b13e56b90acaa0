"""The message shortcut "Page on-call by SMS" and the form it opens.

On any message, the shortcut opens a form pre-filled with the message's text, a link back
to it and the channel's on-call group; the submitted form is checked like ``/sms`` and pages
into the thread of that message.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.access import Action
from bot.core.alerts import message_text, prefill_text
from bot.core.model import Policy, SenderRule
from bot.core.policy import Field, Refuse, decide, sender_rule
from bot.core.segments import analyze
from bot.errors import BadPayload
from bot.sending.ports import Origin
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.listeners.deps import Bridge
from bot.slack.listeners.forms import (
    MAX_INPUT,
    answer_form,
    field_error,
    form_targets,
    open_view,
    payload_errors,
    plain,
    recipients_block,
    submit_form,
)
from bot.slack.listeners.paging import KIND
from bot.slack.payloads import MessageShortcut, ViewSubmission, json_object
from bot.slack.render.labels import segments_label
from bot.slack.render.refusals import refusal_text

logger = logging.getLogger(__name__)

_LOST_MESSAGE = "this form lost track of the message it pages about; close it and start again"


@dataclass(frozen=True)
class PageMeta:
    """What the page form carries in ``private_metadata``: where its results go."""

    channel_id: str
    thread_ts: str
    response_url: str | None = None

    def to_json(self) -> str:
        data = {"channel_id": self.channel_id, "thread_ts": self.thread_ts}
        if self.response_url:
            data["response_url"] = self.response_url
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> PageMeta:
        """The form's ``private_metadata``; BadPayload when it is missing or not ours."""
        data = json_object(raw, _LOST_MESSAGE)
        channel_id, thread_ts = data.get("channel_id"), data.get("thread_ts")
        if not (isinstance(channel_id, str) and channel_id and isinstance(thread_ts, str)):
            raise BadPayload(_LOST_MESSAGE)
        response_url = data.get("response_url")
        return cls(channel_id, thread_ts, response_url if isinstance(response_url, str) else None)


def permalink(domain: str | None, channel_id: str, ts: str, thread_ts: str | None = None) -> str:
    """A link back to a message, built as Slack builds permalinks (no API call, no scope)."""
    if (
        not domain
        or not re.fullmatch(r"[A-Za-z0-9-]+", domain)
        or not re.fullmatch(r"\d+\.\d+", ts)
    ):
        return ""
    link = f"https://{domain}.slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link


def page_view(
    policy: Policy, rule: SenderRule | None, meta: PageMeta, to: str, text: str
) -> dict[str, Any]:
    """The shortcut's form for a sender with ``rule``: who to page (the channel's group by
    default) and the text."""
    text_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ActionId.PAGE_TEXT,
        "multiline": True,
        "placeholder": plain("What is happening"),
    }
    if text:
        text_element["initial_value"] = text[:MAX_INPUT]
    to_block = recipients_block(
        policy,
        rule,
        (BlockId.PAGE_TO, ActionId.PAGE_TO),
        "Page",
        "db-oncall, alice or +447700900123",
        to,
    )
    limit = policy.defaults.max_segments
    about = (
        f"Results go to the thread of the message in <#{meta.channel_id}>. Texts over "
        f"{limit} segments are refused; as pre-filled: {segments_label(analyze(text))}."
    )
    return {
        "type": "modal",
        "callback_id": CallbackId.PAGE_FORM,
        "title": plain("Page on-call by SMS"),
        "submit": plain("Page"),
        "close": plain("Cancel"),
        "private_metadata": meta.to_json(),
        "blocks": [
            to_block,
            {
                "type": "input",
                "block_id": BlockId.PAGE_TEXT,
                "label": plain("Message"),
                "element": text_element,
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": about}]},
        ],
    }


def form_errors(refusal: Refuse) -> dict[str, str]:
    """A refusal as ``response_action: errors``: who/from problems under Page, text under
    Message (the form has no From field: the sender's default number is used)."""
    errors: dict[str, str] = {}
    who: tuple[Field, ...] = ("sender", "to", "from")
    to = [m for m in (refusal.for_field(f) for f in who) if m]
    if to:
        errors[BlockId.PAGE_TO] = field_error("; ".join(to))
    text = refusal.for_field("text")
    if text:
        errors[BlockId.PAGE_TEXT] = field_error(text)
    return errors or {BlockId.PAGE_TEXT: field_error(refusal.reason or "not allowed")}


async def open_page_form(bridge: Bridge, client: AsyncWebClient, shortcut: MessageShortcut) -> None:
    """The message shortcut (already acked): open the pre-filled form at once; the trigger
    expires in 3 seconds, so only in-memory work (and cached Slack user groups, and the
    names of people mentioned without one) comes first."""
    policy, user, channel = bridge.policy, shortcut.user_id, shortcut.channel_id
    verdict = await bridge.workflow.may(user, Action.SEND)
    if not verdict.allowed:
        await bridge.reporter.whisper(channel, user, refusal_text(verdict.refusal() or ""))
        return
    link = permalink(shortcut.team_domain, channel, shortcut.ts, shortcut.thread_ts)
    names = await bridge.names_in(shortcut.message)
    text = prefill_text(message_text(shortcut.message, names), link, policy.defaults.max_segments)
    rule = policy.channels.get(channel)
    response_url = bridge.reporter.trusted_response_url(shortcut.response_url)
    meta = PageMeta(channel, shortcut.thread_ts, response_url)
    sender = sender_rule(policy, user, await bridge.directory())
    view = page_view(policy, sender, meta, rule.page if rule and rule.page else "", text)
    error = await open_view(client, shortcut.trigger_id, view)
    if error is None:
        return
    logger.warning("could not open the page form for %s: %s", user, error)
    await bridge.reporter.whisper(
        channel, user, f":warning: The page form could not be opened ({error}); try again."
    )


async def submit_page_form(bridge: Bridge, body: dict[str, Any]) -> dict[str, str] | None:
    """Check a submitted page form like ``/sms`` and page into the original message's
    thread; field errors for the form, or None to close it."""
    try:
        submission = ViewSubmission.parse(body)
        view = submission.view
        meta = PageMeta.from_json(view.private_metadata)
        targets = form_targets(view.text(BlockId.PAGE_TO, ActionId.PAGE_TO))
        text = view.text(BlockId.PAGE_TEXT, ActionId.PAGE_TEXT).strip()
    except BadPayload as exc:
        return payload_errors(exc, BlockId.PAGE_TEXT)
    user = submission.user_id
    origin = Origin(
        meta.channel_id,
        user,
        response_url=meta.response_url,
        thread_ts=meta.thread_ts or None,
        dedupe_key=f"view:{view.id}" if view.id else None,
        kind=KIND,
    )
    directory = await bridge.directory()
    return await submit_form(
        bridge,
        lambda: decide(bridge.policy, user, targets, text, None, directory),
        origin,
        form_errors,
        BlockId.PAGE_TEXT,
    )


def register(app: AsyncApp, bridge: Bridge) -> None:
    """Register the message shortcut and its form's submission."""

    @app.shortcut(CallbackId.PAGE_SHORTCUT)
    async def on_shortcut(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            shortcut = MessageShortcut.parse(body)
        except BadPayload as exc:
            logger.info("page shortcut ignored: %s", exc)
            return
        bridge.runner.spawn(
            open_page_form(bridge, client, shortcut), name=f"page-form-{shortcut.ts}"
        )

    @app.view(CallbackId.PAGE_FORM)
    async def on_submit(ack: AsyncAck, body: dict[str, Any]) -> None:
        await answer_form(ack, await submit_page_form(bridge, body))
