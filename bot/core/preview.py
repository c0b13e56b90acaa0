"""The compose form's live preview: what a text costs in SMS segments, and why.

Computed on exactly the text a submission would send, so what the user sees while typing is
what the policy later checks.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from bot.core.segments import GSM7_EXTENSION, GSM7_REPLACEMENTS, SegmentInfo, analyze, gsm7_cleanup


def outgoing_text(text: str, cleanup: bool) -> str:
    """Exactly the text a submission would send: cleaned up if asked, then trimmed."""
    return (gsm7_cleanup(text) if cleanup else text).strip()


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe_char(char: str) -> str:
    """'“' (U+201C LEFT DOUBLE QUOTATION MARK); invisible characters by code point only."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    label = f"{code} {name}".strip()
    if char.isprintable() and not char.isspace():
        return f"'{_mrkdwn_escape(char)}' ({label})"
    return label


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _numbers_line(info: SegmentInfo) -> str:
    """Encoding (and why), characters used, segments, and what still fits."""
    encoding = f"*{info.encoding}*"
    if info.first_non_gsm:
        encoding += f" because of {describe_char(info.first_non_gsm)}"
    return (
        f"{encoding} · {_plural(info.units, 'character')} · {_plural(info.segments, 'segment')}"
        f" · {info.remaining} left before another segment"
    )


def _cleanup_line(text: str) -> str:
    """What the GSM-7 clean-up changed, so the user sees why the numbers moved."""
    changed = Counter(char for char in text if char in GSM7_REPLACEMENTS)
    if not changed:
        return "GSM-7 clean-up: nothing to replace."
    parts = []
    for char, count in changed.items():
        times = f" ({count} times)" if count > 1 else ""
        replacement = GSM7_REPLACEMENTS[char]
        shown = "a space" if replacement == " " else f"`{replacement}`"
        parts.append(f"{describe_char(char)} → {shown}{times}")
    return "GSM-7 clean-up replaced " + ", ".join(parts) + "."


def _limit_line(info: SegmentInfo, max_segments: int) -> str | None:
    if info.segments > max_segments:
        return (
            f":no_entry: {_plural(info.segments, 'segment')} is over the limit of "
            f"{max_segments}: this text will be refused. Shorten it."
        )
    if info.segments == max_segments:
        return (
            f":warning: At the limit of {_plural(max_segments, 'segment')}: "
            "any longer and the text will be refused."
        )
    return None


def _cleanup_tip(info: SegmentInfo, cleaned: SegmentInfo) -> str | None:
    """Say what ticking the clean-up would save, when it saves anything."""
    tick = f":bulb: Tick *GSM-7 clean-up* to send it as {cleaned.encoding}"
    if cleaned.segments < info.segments:
        return f"{tick} in {_plural(cleaned.segments, 'segment')} instead of {info.segments}."
    if cleaned.encoding != info.encoding:
        room = f"room for {cleaned.remaining} more characters instead of {info.remaining}"
        return f"{tick}, with {room}."
    return None


def preview_text(text: str, cleanup: bool, max_segments: int) -> str:
    """The live preview under the message (mrkdwn), on exactly what would be sent."""
    sent = outgoing_text(text, cleanup)
    if not sent:
        return "Type a message to see its encoding, length and number of SMS segments."
    info = analyze(sent)
    lines = [_numbers_line(info)]
    extension = sum(1 for char in sent if char in GSM7_EXTENSION)
    if info.encoding == "GSM-7" and extension:
        lines.append(f"{_plural(extension, 'character')} of ^{{}}\\[~]|€ count double.")
    if cleanup:
        lines.append(_cleanup_line(text))
    else:
        tip = _cleanup_tip(info, analyze(outgoing_text(text, True)))
        if tip:
            lines.append(tip)
    limit = _limit_line(info, max_segments)
    if limit:
        lines.append(limit)
    lines.append("Each segment is billed per recipient.")
    return "\n".join(lines)
