"""Block Kit pieces that stay within Slack's limits by splitting, never by cutting.

Slack refuses a whole message or view when one part is over a limit (a section's text over
3000 characters, more than 50 blocks in a message or 100 in a view), so the bridge's long
texts are split between lines into several sections here, and views are assembled within
their block budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Block = dict[str, Any]

# Slack's documented limits (Block Kit reference, chat.postMessage).
MAX_SECTION_TEXT = 3000
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
MAX_ACTIONS_ELEMENTS = 25
MAX_HEADER_TEXT = 150
_QUOTE = "> "
_LONGEST_ENTITY = len("&amp;")


def _cut_at(text: str, limit: int) -> int:
    """Where to end a piece of at most ``limit`` characters: at a line break in its second
    half, else at its last space, and never inside an escape such as ``&amp;``."""
    newline = text.rfind("\n", limit // 2, limit + 1)
    if newline > 0:
        return newline
    space = text.rfind(" ", limit // 2, limit)
    cut = space if space > 0 else limit
    amp = text.rfind("&", cut - _LONGEST_ENTITY + 1, cut)
    if amp > 0 and ";" not in text[amp:cut]:
        cut = amp
    return cut


def split_text(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, broken between lines or words
    where it can be, so that nothing is lost when it spans several sections or messages. A
    quoted line (an SMS text) broken in two stays quoted in the next piece."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = _cut_at(text, limit)
        piece, text = text[:cut], text[cut:]
        if text.startswith("\n"):
            text = text[1:]
        else:
            text = text.lstrip(" ")
            if piece.startswith(_QUOTE, piece.rfind("\n") + 1):
                text = _QUOTE + text
        pieces.append(piece)
    pieces.append(text)
    return [piece for piece in pieces if piece.strip()] or ["\u200b"]


def section(text: str) -> Block:
    """One section; its text must already be within ``MAX_SECTION_TEXT`` (see ``sections``)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def sections(text: str) -> list[Block]:
    """As many sections as ``text`` needs, in order."""
    return [section(piece) for piece in split_text(text)]


def context(text: str) -> Block:
    """Small grey text; the caller keeps it short (a context element has the section cap)."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def header(text: str) -> Block:
    """A header; ours are short fixed titles, so a longer one is a bug worth seeing."""
    assert len(text) <= MAX_HEADER_TEXT, text
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def button(
    text: str, action_id: str, value: str, style: str | None = None, confirm: Block | None = None
) -> Block:
    """A button; ``confirm`` is a confirmation dialog Slack shows before the click counts
    (https://api.slack.com/reference/block-kit/composition-objects#confirm)."""
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, yes: str = "Retry", no: str = "Cancel") -> Block:
    """A confirmation dialog for a button
    (https://api.slack.com/reference/block-kit/composition-objects#confirm)."""
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "plain_text", "text": text},
        "confirm": {"type": "plain_text", "text": yes},
        "deny": {"type": "plain_text", "text": no},
    }


def fit_items(items: Sequence[list[Block]], room: int) -> tuple[list[Block], int]:
    """Whole items (each a few blocks) in order while they fit in ``room`` blocks; the
    blocks, and how many items did not fit (to be named in a "…and N more" line)."""
    blocks: list[Block] = []
    for taken, item in enumerate(items):
        if len(blocks) + len(item) > room:
            return blocks, len(items) - taken
        blocks.extend(item)
    return blocks, 0


def within_text_limit(text: str) -> str:
    """A message's ``text`` within Slack's 40,000 characters. The bridge's texts are built to
    stay far below it; this only keeps a pathological policy (a huge ``max_segments``) from
    losing the whole message to ``msg_too_long``."""
    if len(text) <= MAX_MESSAGE_TEXT:
        return text
    note = "\n… (the rest is over Slack's 40,000-character limit for one message)"
    return text[: MAX_MESSAGE_TEXT - len(note)] + note
