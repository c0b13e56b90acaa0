"""Incident paging from channels (SPEC §3 "Paging from channels", issue 5).

Three entry points page on-call people from the channel where an incident is happening:
``@bot page [targets] <text>``, the message shortcut "Page on-call by SMS", and the
channels' ``auto_page`` rules on new messages. Each one only turns a Slack payload into a
policy decision and an ``Origin`` whose ``thread_ts`` is the message that triggered the page,
then hands it to ``Bridge.submit``: recording, the paced and retried fan-out, and the one
live thread reply are the workflow's. Parsing and text extraction are pure functions here,
so they are testable without Slack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.commands import unslack
from bot.core.model import Policy
from bot.core.policy import (
    Refuse,
    auto_page_sender,
    decide,
    decide_auto_page,
    resolve_target,
    split_targets,
    trim_to_segments,
)
from bot.core.segments import analyze, gsm7_cleanup
from bot.errors import BridgeError, InvalidNumber, UnknownRecipient
from bot.slack.compose_modal import open_view, recipients_block
from bot.slack.deps import Bridge
from bot.slack.ids import ActionId, CallbackId
from bot.slack.render import describe_error, refusal_text, segments_label
from bot.slack.reporter import Origin

logger = logging.getLogger(__name__)

BLOCK_TO, ACTION_TO = "page_to", ActionId.PAGE_TO
BLOCK_TEXT, ACTION_TEXT = "page_text", ActionId.PAGE_TEXT
KIND = "page"

# Subtypes that are not a new message someone (or some integration) posted.
IGNORED_SUBTYPES = frozenset(
    {
        "message_changed",
        "message_deleted",
        "message_replied",
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "channel_posting_permissions",
        "group_join",
        "group_leave",
        "group_topic",
        "group_purpose",
        "group_name",
        "group_archive",
        "group_unarchive",
        "pinned_item",
        "unpinned_item",
        "ekm_access_denied",
        "reminder_add",
    }
)

_FIRST_WORD = re.compile(r"\s*(\S+)(.*)", re.DOTALL)
_LEADING_EMOJI = re.compile(r"^:[a-z0-9_+-]+:\s*")
_MAX_INPUT = 3000
_MAX_FIELD_ERROR = 500


class BadForm(BridgeError):
    """A shortcut or form payload without a field we need; shown to the user, never raised
    out of a handler."""


# --- pure: reading messages ----------------------------------------------------------------


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _rich_text(element: object) -> str:
    """The plain text of a rich_text element tree (what Slack renders, roughly)."""
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "text":
        return _str(element.get("text"))
    if kind == "link":
        return _str(element.get("text")) or _str(element.get("url"))
    if kind == "user":
        return "@" + _str(element.get("user_id"))
    if kind == "channel":
        return "#" + _str(element.get("channel_id"))
    if kind == "emoji":
        return f":{_str(element.get('name'))}:"
    children = element.get("elements")
    if not isinstance(children, list):
        return ""
    joiner = "\n" if kind in ("rich_text", "rich_text_list") else ""
    return joiner.join(part for part in (_rich_text(child) for child in children) if part)


def blocks_text(blocks: object) -> str:
    """The readable text of Block Kit blocks: sections, fields, headers, context, rich text."""
    if not isinstance(blocks, list):
        return ""
    parts: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(_str(text.get("text")))
        for field in block.get("fields") or []:
            if isinstance(field, dict):
                parts.append(_str(field.get("text")))
        if block.get("type") == "context":
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    parts.append(_str(element.get("text")))
        if block.get("type") == "rich_text":
            parts.append(_rich_text(block))
    return "\n".join(part for part in parts if part)


def _attachment_text(attachment: Mapping[str, Any]) -> str:
    """An integration's attachment: pretext, title, text and fields, else its fallback."""
    parts = [_str(attachment.get(key)) for key in ("pretext", "title", "text")]
    for field in attachment.get("fields") or []:
        if isinstance(field, dict):
            title, value = _str(field.get("title")), _str(field.get("value"))
            parts.append(f"{title}: {value}" if title and value else title or value)
    text = "\n".join(part for part in parts if part)
    return text or _str(attachment.get("fallback")) or blocks_text(attachment.get("blocks"))


def message_text(message: Mapping[str, Any]) -> str:
    """The plain text of a message as a person reads it, alert bots included: ``text``, then
    attachments (link unfurls left out), then blocks when there is nothing else. Slack's
    escaping and <link|label> wrappers are undone."""
    parts = [_str(message.get("text"))]
    attachments = message.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict) and not attachment.get("from_url"):
            parts.append(_attachment_text(attachment))
    if not any(part.strip() for part in parts):
        parts.append(blocks_text(message.get("blocks")))
    unique: list[str] = []
    for part in (unslack(part).strip() for part in parts):
        if part and part not in unique:
            unique.append(part)
    return "\n".join(unique)


def normalised(text: str) -> str:
    """What makes two alerts "identical": case and whitespace do not count."""
    return " ".join(text.lower().split())


def alert_key(channel_id: str, text: str) -> str:
    """The store key that lets one identical alert page once per dedupe window."""
    digest = hashlib.sha256(normalised(text).encode()).hexdigest()
    return f"autopage:{channel_id}:{digest}"


def event_key(body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """One key per event however often Slack delivers it (retries keep the event_id)."""
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id:
        return f"event:{event_id}"
    return f"message:{_str(event.get('channel'))}:{_str(event.get('ts'))}"


def is_new_message(event: Mapping[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    """A new top-level message by someone else: not an edit, deletion or membership note,
    not a thread reply, and never the bridge's own."""
    if event.get("subtype") in IGNORED_SUBTYPES or event.get("hidden"):
        return False
    ts, thread_ts = event.get("ts"), event.get("thread_ts")
    if not isinstance(ts, str) or not ts or (thread_ts and thread_ts != ts):
        return False
    if bot_user_id and event.get("user") == bot_user_id:
        return False
    return not (bot_id and event.get("bot_id") == bot_id)


def auto_page_text(
    policy: Policy, event: Mapping[str, Any], bot_user_id: str | None, bot_id: str | None
) -> str | None:
    """The alert text when this message event should auto-page its channel, else None.

    A message that mentions the bridge is a command for it: ``app_mention`` handles that one,
    so an "@bot page … CRITICAL …" never pages twice.
    """
    rule = policy.channels.get(_str(event.get("channel")))
    if rule is None or rule.auto_page is None or not is_new_message(event, bot_user_id, bot_id):
        return None
    if bot_user_id and f"<@{bot_user_id}" in _str(event.get("text")):
        return None
    text = message_text(event)
    return text if text and rule.auto_page.match.search(text) else None


# --- pure: the mention command -------------------------------------------------------------


@dataclass(frozen=True)
class PageCommand:
    """What "@bot page …" asked for: explicit targets (may be empty) and the text."""

    targets: tuple[str, ...]
    text: str


def _resolves(policy: Policy, target: str) -> bool:
    try:
        resolve_target(policy, target)
    except (InvalidNumber, UnknownRecipient):
        return False
    return True


def after_mention(text: str, bot_user_id: str | None) -> str:
    """The text after the first mention of the bridge (all of it if there is none)."""
    if bot_user_id:
        match = re.search(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", text)
        if match:
            return text[match.end() :]
    return re.sub(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>", "", text)


def parse_page(policy: Policy, text: str, bot_user_id: str | None) -> PageCommand | None:
    """Parse "<@bot> page [targets] <text>"; None when it is not a page command.

    The first word (a comma list continues over "alice, bob") is a target when it resolves:
    a contact, a group or a phone number; a list counts when any item resolves, so a typo in
    it is reported rather than texted. Otherwise it is the start of the text.
    """
    words = unslack(after_mention(text, bot_user_id)).strip().split(maxsplit=1)
    if not words or words[0].lower().rstrip(":") != "page":
        return None
    args = words[1] if len(words) > 1 else ""
    to_parts: list[str] = []
    rest = args
    while word := _FIRST_WORD.match(rest):
        head, rest = word.group(1), word.group(2)
        to_parts.append(head)
        if not head.endswith(",") and not rest.lstrip().startswith(","):
            break
    targets = split_targets("".join(to_parts))
    if any(_resolves(policy, target) for target in targets):
        return PageCommand(tuple(targets), rest.strip())
    return PageCommand((), args.strip())


def usage_text(policy: Policy, channel_id: str, bot_user_id: str | None) -> str:
    """The private hint for a mention that is not a page command."""
    bot = f"<@{bot_user_id}>" if bot_user_id else "@sms-bridge"
    rule = policy.channels.get(channel_id)
    default = (
        f" Without a target it pages this channel's on-call: *{rule.page}*."
        if rule is not None and rule.page
        else " This channel has no default on-call group, so say who."
    )
    return (
        f"*Page on-call by SMS:* `{bot} page [group|contact|number] <what is happening>` "
        f"(several targets: `alice, bob`).{default} Results are posted in the thread of "
        "your message. On any message you can also use the shortcut *Page on-call by SMS*."
    )


# --- pure: the shortcut's modal ------------------------------------------------------------


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
    def from_json(cls, raw: object) -> PageMeta:
        lost = "this form lost track of the message it pages about; close it and start again"
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
        except ValueError as exc:
            raise BadForm(lost) from exc
        if not isinstance(data, dict):
            raise BadForm(lost)
        channel_id, thread_ts = data.get("channel_id"), data.get("thread_ts")
        if not (isinstance(channel_id, str) and channel_id and isinstance(thread_ts, str)):
            raise BadForm(lost)
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


def prefill_text(text: str, link: str, max_segments: int) -> str:
    """The message for the form: cleaned to GSM-7 where possible, trimmed to the segment
    limit, and the link back appended only when it still fits."""
    trimmed = trim_to_segments(gsm7_cleanup(text).strip(), max_segments)
    if not link:
        return trimmed
    with_link = f"{trimmed}\n{link}" if trimmed else link
    return with_link if analyze(with_link).segments <= max_segments else trimmed


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def page_view(policy: Policy, user_id: str, meta: PageMeta, to: str, text: str) -> dict[str, Any]:
    """The shortcut's form: who to page (the channel's group by default) and the text."""
    text_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ACTION_TEXT,
        "multiline": True,
        "placeholder": _plain("What is happening"),
    }
    if text:
        text_element["initial_value"] = text[:_MAX_INPUT]
    to_block = recipients_block(
        policy, user_id, (BLOCK_TO, ACTION_TO), "Page", "db-oncall, alice or +447700900123", to
    )
    limit = policy.defaults.max_segments
    about = (
        f"Results go to the thread of the message in <#{meta.channel_id}>. Texts over "
        f"{limit} segments are refused; as pre-filled: {segments_label(analyze(text))}."
    )
    return {
        "type": "modal",
        "callback_id": CallbackId.PAGE_FORM,
        "title": _plain("Page on-call by SMS"),
        "submit": _plain("Page"),
        "close": _plain("Cancel"),
        "private_metadata": meta.to_json(),
        "blocks": [
            to_block,
            {
                "type": "input",
                "block_id": BLOCK_TEXT,
                "label": _plain("Message"),
                "element": text_element,
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": about}]},
        ],
    }


def _form_value(view: Mapping[str, Any], block_id: str, action_id: str) -> str:
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    block = values.get(block_id) if isinstance(values, dict) else None
    element = block.get(action_id) if isinstance(block, dict) else None
    value = element.get("value") if isinstance(element, dict) else None
    if value is not None and not isinstance(value, str):
        raise BadForm(f"the form's {block_id} field arrived garbled; please try again")
    return value or ""


def field_error(message: str) -> str:
    """A field error is plain text: no leading :emoji:, capitalised, within Slack's cap."""
    message = _LEADING_EMOJI.sub("", message.strip())
    return message[:1].upper() + message[1:_MAX_FIELD_ERROR]


def form_errors(refusal: Refuse) -> dict[str, str]:
    """A refusal as ``response_action: errors``: who/from problems under Page, text under
    Message (the form has no From field: the sender's default number is used)."""
    errors: dict[str, str] = {}
    to = [m for m in (refusal.for_field(f) for f in ("sender", "to", "from")) if m]
    if to:
        errors[BLOCK_TO] = field_error("; ".join(to))
    text = refusal.for_field("text")
    if text:
        errors[BLOCK_TEXT] = field_error(text)
    return errors or {BLOCK_TEXT: field_error(refusal.reason or "not allowed")}


# --- handlers ------------------------------------------------------------------------------


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


async def page_from_mention(
    bridge: Bridge, body: Mapping[str, Any], event: Mapping[str, Any], bot_user_id: str | None
) -> None:
    """``@bot page …``: check it like ``/sms``, page into the mention's thread, and answer
    every refusal privately."""
    user, channel, ts = _str(event.get("user")), _str(event.get("channel")), _str(event.get("ts"))
    if not (user and channel and ts):
        logger.info("app_mention without user, channel or ts ignored")
        return
    policy = bridge.policy
    command = parse_page(policy, _str(event.get("text")), bot_user_id)
    if command is None:
        await bridge.reporter.whisper(channel, user, usage_text(policy, channel, bot_user_id))
        return
    targets: Sequence[str] = command.targets
    if not targets:
        rule = policy.channels.get(channel)
        if rule is None or not rule.page:
            await bridge.reporter.whisper(
                channel,
                user,
                refusal_text("this channel has no page group; say who, e.g. `page db-oncall …`"),
            )
            return
        targets = (rule.page,)
    if not command.text:
        await bridge.reporter.whisper(
            channel, user, refusal_text("say what is happening after who to page")
        )
        return
    decision = decide(policy, user, targets, command.text)
    if isinstance(decision, Refuse):
        await bridge.reporter.whisper(channel, user, refusal_text(decision.reason))
        return
    thread_ts = _str(event.get("thread_ts")) or ts
    origin = Origin(
        channel, user, thread_ts=thread_ts, dedupe_key=event_key(body, event), kind=KIND
    )
    refusal = await bridge.submit(decision, origin)
    if refusal:
        await bridge.reporter.whisper(channel, user, refusal)


async def auto_page(
    bridge: Bridge, body: Mapping[str, Any], event: Mapping[str, Any], text: str
) -> None:
    """Page a channel's group for an alert: once per identical alert within the rule's
    dedupe window and once per event, both held in the store (so across processes)."""
    channel, ts = _str(event.get("channel")), _str(event.get("ts"))
    policy = bridge.policy
    rule = policy.channels.get(channel)
    if rule is None or rule.auto_page is None:
        return
    workflow = bridge.workflow
    key = alert_key(channel, text)
    if not await workflow.db(workflow.store.claim_key, key, rule.auto_page.dedupe_window):
        logger.info("auto-page in %s: same alert already paged within the window", channel)
        return
    decision = decide_auto_page(policy, channel, gsm7_cleanup(text))
    if isinstance(decision, Refuse):
        refusal: str | None = refusal_text(decision.reason)
    else:
        origin = Origin(
            channel,
            auto_page_sender(channel),
            thread_ts=ts,
            dedupe_key=event_key(body, event),
            kind=KIND,
        )
        refusal = await bridge.submit(decision, origin)
    if refusal:
        logger.warning("auto-page in %s not sent: %s", channel, refusal)
        await bridge.reporter.post(channel, f"*Auto-page:* {refusal}", thread_ts=ts)


async def open_page_form(bridge: Bridge, client: AsyncWebClient, body: Mapping[str, Any]) -> None:
    """The message shortcut (already acked): open the pre-filled form at once; the trigger
    expires in 3 seconds, so only in-memory work comes first."""
    user = _str(_dict(body.get("user")).get("id"))
    channel = _str(_dict(body.get("channel")).get("id"))
    message = _dict(body.get("message"))
    ts = _str(message.get("ts")) or _str(body.get("message_ts"))
    if not (user and channel and ts):
        logger.info("page shortcut without user, channel or message ignored")
        return
    policy = bridge.policy
    if policy.rule_for(user) is None:
        await bridge.reporter.whisper(
            channel, user, refusal_text("you are not allowed to send SMS from Slack")
        )
        return
    thread_ts = _str(message.get("thread_ts")) or ts
    link = permalink(_str(_dict(body.get("team")).get("domain")), channel, ts, thread_ts)
    text = prefill_text(message_text(message), link, policy.defaults.max_segments)
    rule = policy.channels.get(channel)
    meta = PageMeta(
        channel, thread_ts, bridge.reporter.trusted_response_url(body.get("response_url"))
    )
    view = page_view(policy, user, meta, rule.page if rule and rule.page else "", text)
    error = await open_view(client, body.get("trigger_id"), view)
    if error is None:
        return
    logger.warning("could not open the page form for %s: %s", user, error)
    await bridge.reporter.whisper(
        channel, user, f":warning: The page form could not be opened ({error}); try again."
    )


async def submit_page_form(bridge: Bridge, body: Mapping[str, Any]) -> dict[str, str] | None:
    """Check a submitted page form like ``/sms`` and page into the original message's
    thread; field errors for the form, or None to close it."""
    try:
        user = _str(_dict(body.get("user")).get("id"))
        if not user:
            raise BadForm("Slack did not say who submitted this form; please try again")
        view = _dict(body.get("view"))
        meta = PageMeta.from_json(view.get("private_metadata"))
        to = _form_value(view, BLOCK_TO, ACTION_TO)
        text = _form_value(view, BLOCK_TEXT, ACTION_TEXT).strip()
    except BadForm as exc:
        return {BLOCK_TEXT: field_error(exc.user_message)}
    try:
        targets = split_targets(re.sub(r"[;\n]", ",", to))
        decision = decide(bridge.policy, user, targets, text)
        if isinstance(decision, Refuse):
            return form_errors(decision)
        view_id = _str(view.get("id"))
        origin = Origin(
            meta.channel_id,
            user,
            response_url=meta.response_url,
            thread_ts=meta.thread_ts or None,
            dedupe_key=f"view:{view_id}" if view_id else None,
            kind=KIND,
        )
        refusal = await bridge.submit(decision, origin)
    except Exception as exc:  # the form must get an answer; describe_error logs the bug
        return {BLOCK_TEXT: field_error(describe_error(exc))}
    return {BLOCK_TEXT: field_error(refusal)} if refusal else None


def register(app: AsyncApp, bridge: Bridge) -> None:
    """Register the mention, auto-page, shortcut and form listeners. Events are acked by
    Bolt; their work runs on the bridge's runner so a shutdown lets it finish."""

    @app.event("app_mention")
    async def on_mention(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        bridge.runner.spawn(
            page_from_mention(bridge, body, event, context.bot_user_id),
            name=f"page-mention-{event.get('ts')}",
        )

    @app.event("message")
    async def on_message(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        text = auto_page_text(bridge.policy, event, context.bot_user_id, context.bot_id)
        if text is not None:
            bridge.runner.spawn(
                auto_page(bridge, body, event, text), name=f"auto-page-{event.get('ts')}"
            )

    @app.shortcut(CallbackId.PAGE_SHORTCUT)
    async def on_shortcut(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await open_page_form(bridge, client, body)

    @app.view(CallbackId.PAGE_FORM)
    async def on_submit(ack: AsyncAck, body: dict[str, Any]) -> None:
        errors = await submit_page_form(bridge, body)
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack()
