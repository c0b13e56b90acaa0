"""What Slack would show, as plain lines for a terminal: mrkdwn read the way Slack renders
it (emoji, mentions, links, bold), Block Kit blocks as text, buttons in brackets."""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

from demo.workspace import Shown

CHANNEL_NAMES = {"C0GENERAL": "#general", "C0INCIDENT": "#incident", "C0APPROVALS": "#approvals"}
# The emoji the bridge uses, as Slack draws them; any other stays as :its_name:.
EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "speech_balloon": "💬",
    "rotating_light": "🚨",
    "pager": "📟",
    "mailbox_with_mail": "📬",
    "outbox_tray": "📤",
    "iphone": "📱",
    "bell": "🔔",
    "no_bell": "🔕",
    "arrow_up": "⬆️",
    "stopwatch": "⏱️",
    "question": "❓",
    "grey_question": "❔",
    "octagonal_sign": "🛑",
    "raised_hand": "✋",
    "thumbsup": "👍",
    "inbox_tray": "📥",
    "lock": "🔒",
    "clock3": "🕒",
}
WIDTH = 96

_SPECIAL = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_BOLD = re.compile(r"(?<![\w*])\*(\S(?:[^*\n]*\S)?)\*(?![\w*])")


def _special(match: re.Match[str]) -> str:
    """Slack's angle-bracket forms: mentions, channels, dates and links."""
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return "@" + target[1:]
    if target.startswith("#"):
        return (label and f"#{label}") or CHANNEL_NAMES.get(target[1:], target)
    if target.startswith("!"):
        return label or "@" + target[1:].split("^", 1)[0]
    return f"{label} ({target})" if label and label != target else target


def plain(mrkdwn: str) -> str:
    """mrkdwn as Slack shows it, without the styling a terminal cannot draw."""
    text = _SPECIAL.sub(_special, mrkdwn)
    text = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    text = _BOLD.sub(r"\1", text)
    return html.unescape(text)


def text_of(obj: Any) -> str:
    return str(obj.get("text") or "") if isinstance(obj, dict) else ""


def block_lines(blocks: Iterable[Any]) -> Iterator[str]:
    """The visible text of Block Kit blocks."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("section", "header"):
            yield from plain(text_of(block.get("text"))).splitlines()
            yield from (plain(text_of(item)) for item in block.get("fields") or [])
        elif kind == "context":
            yield "  ".join(plain(text_of(item)) for item in block.get("elements") or [])
        elif kind == "actions":
            labels = [text_of(item.get("text")) for item in block.get("elements") or []]
            yield "  ".join(f"[ {label} ]" for label in labels if label)
        elif kind == "input":
            yield f"{text_of(block.get('label'))}: ______"
        elif kind == "divider":
            yield "─" * 20


def body_lines(shown: Shown) -> list[str]:
    """A message's lines: its blocks when it has any (Slack shows those, not the text)."""
    blocks = shown.blocks if isinstance(shown.blocks, list) else []
    lines = list(block_lines(blocks)) if blocks else plain(shown.text).splitlines()
    return lines or [plain(shown.text)]


def heading(shown: Shown) -> str:
    where = CHANNEL_NAMES.get(shown.channel, shown.channel)
    if shown.kind in ("post", "edit"):
        place = f"{where} ↳ thread reply" if shown.thread else f"{where} · sms-bridge"
        return place + (" (edited)" if shown.kind == "edit" else "")
    if shown.kind == "form":
        return f"form opens: “{shown.text}”"
    to = f" @{shown.to_user}" if shown.to_user else ""
    return f"{where + ' · ' if where else ''}only visible to you{to}"


def render(shown: Shown) -> str:
    """One thing Slack showed, as a small card: a heading, then the message indented."""
    indent = "      " if shown.thread else "    "
    lines = [
        wrapped
        for line in body_lines(shown)
        for wrapped in textwrap.wrap(line, WIDTH, subsequent_indent="  ") or [""]
    ]
    body = "\n".join(indent + line for line in lines)
    return f"  {heading(shown)}\n{body}"
