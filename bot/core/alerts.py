"""Reading messages as alerts: their plain text, whether one should auto-page, the keys that
make it page once, and the text a page form starts from.

Messages arrive as Slack's untrusted JSON; every reader here tolerates any shape and never
raises, so the paging entry points stay thin and these stay testable without Slack.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Any, Protocol, cast

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from bot.core.commands import NO_NAMES, clean_text, unslack
from bot.core.model import Policy
from bot.core.policy import trim_to_segments
from bot.core.segments import analyze, gsm7_cleanup

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


class LinearPattern(Protocol):
    """The one thing asked of a compiled RE2 pattern."""

    def search(self, text: str) -> object | None: ...


def linear_pattern(pattern: str) -> LinearPattern:
    """``pattern`` compiled by RE2, whose matching time grows linearly with the text: an
    ``auto_page.match`` like ``^(a+)+$`` made Python's backtracking engine block the event
    loop for seconds on one 28-character alert. Raises ``re2.error`` for what RE2 does not
    support (lookaround, backreferences); ``check-config`` reports that at the pattern."""
    options = re2.Options()
    options.log_errors = False  # the error is raised and reported; RE2's stderr line is noise
    return cast(LinearPattern, re2.compile(pattern, options))


@functools.lru_cache(maxsize=128)
def _compiled(pattern: str) -> LinearPattern:
    """One RE2 compilation per distinct pattern, not one per message."""
    return linear_pattern(pattern)


def pattern_matches(pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` occurs in ``text``, searched by RE2 (see ``linear_pattern``) so
    no pattern can stall the bridge. Text from Slack is cleaned first, so RE2's UTF-8
    encoding of it cannot fail."""
    return _compiled(pattern.pattern).search(clean_text(text)) is not None


def text_field(value: object) -> str:
    """A string field of an untrusted payload, cleaned (see ``clean_text``); anything else
    reads as empty."""
    return clean_text(value) if isinstance(value, str) else ""


def _rich_text(element: object) -> str:
    """The plain text of a rich_text element tree (what Slack renders, roughly)."""
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "text":
        return text_field(element.get("text"))
    if kind == "link":
        return text_field(element.get("text")) or text_field(element.get("url"))
    if kind == "user":  # as markup, so it reads as the person's name like any mention
        return f"<@{text_field(element.get('user_id'))}>"
    if kind == "channel":
        return f"<#{text_field(element.get('channel_id'))}>"
    if kind == "broadcast":
        return f"<!{text_field(element.get('range'))}>"
    if kind == "emoji":
        return f":{text_field(element.get('name'))}:"
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
            parts.append(text_field(text.get("text")))
        for field in block.get("fields") or []:
            if isinstance(field, dict):
                parts.append(text_field(field.get("text")))
        if block.get("type") == "context":
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    parts.append(text_field(element.get("text")))
        if block.get("type") == "rich_text":
            parts.append(_rich_text(block))
    return "\n".join(part for part in parts if part)


def _attachment_text(attachment: Mapping[str, Any]) -> str:
    """An integration's attachment: pretext, title, text and fields, else its fallback."""
    parts = [text_field(attachment.get(key)) for key in ("pretext", "title", "text")]
    for field in attachment.get("fields") or []:
        if isinstance(field, dict):
            title, value = text_field(field.get("title")), text_field(field.get("value"))
            parts.append(f"{title}: {value}" if title and value else title or value)
    text = "\n".join(part for part in parts if part)
    return text or text_field(attachment.get("fallback")) or blocks_text(attachment.get("blocks"))


def message_text(message: Mapping[str, Any], names: Mapping[str, str] = NO_NAMES) -> str:
    """The plain text of a message as a person reads it, alert bots included: ``text``, then
    attachments (link unfurls left out), then blocks when there is nothing else. Slack's
    escaping and <link|label> wrappers are undone; ``names`` names mentioned users."""
    parts = [text_field(message.get("text"))]
    attachments = message.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict) and not attachment.get("from_url"):
            parts.append(_attachment_text(attachment))
    if not any(part.strip() for part in parts):
        parts.append(blocks_text(message.get("blocks")))
    unique: list[str] = []
    for part in (unslack(part, names).strip() for part in parts):
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
    return f"message:{text_field(event.get('channel'))}:{text_field(event.get('ts'))}"


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
    rule = policy.channels.get(text_field(event.get("channel")))
    if rule is None or rule.auto_page is None or not is_new_message(event, bot_user_id, bot_id):
        return None
    if bot_user_id and f"<@{bot_user_id}" in text_field(event.get("text")):
        return None
    text = message_text(event)
    return text if text and pattern_matches(rule.auto_page.match, text) else None


def prefill_text(text: str, link: str, max_segments: int) -> str:
    """A page's text made from a message: cleaned to GSM-7 where possible, trimmed to the
    segment limit, and the link back appended only when it still fits."""
    trimmed = trim_to_segments(gsm7_cleanup(text).strip(), max_segments)
    if not link:
        return trimmed
    with_link = f"{trimmed}\n{link}" if trimmed else link
    return with_link if analyze(with_link).segments <= max_segments else trimmed
