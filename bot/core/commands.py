"""Parsing of the ``/sms`` command text, which is untrusted user input."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

# Slack wraps links, phone numbers and mentions as <target|label> or <target>.
_SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_FIRST_WORD = re.compile(r"\s*(\S+)(.*)", re.DOTALL)
_FROM_OPTION = re.compile(r"^from[:=](\S+)$", re.IGNORECASE)


@dataclass(frozen=True)
class SmsCommand:
    """What the user asked for: help, a send, or the modal (optionally prefilled)."""

    kind: Literal["help", "send", "modal"]
    to: str = ""
    text: str = ""
    from_name: str | None = None


def unslack(text: str) -> str:
    """Undo Slack's escaping: &amp;/&lt;/&gt; and <tel:…|label>/<@U1|name>/<url> wrappers."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if label:
            return ("@" + label) if target.startswith("@") else label
        return re.sub(r"^(tel:|mailto:)", "", target)

    return html.unescape(_SLACK_LINK.sub(replace, text))


def parse_sms_command(raw: str) -> SmsCommand:
    """Parse "[from:NAME] <to>[, <to>…] <text>", "help", or nothing (→ modal).

    Recipients are the first word; a word ending in a comma continues the list, so
    "alice, bob hello" means alice and bob.
    """
    text = unslack(raw).strip()
    if text.lower() in ("help", "-h", "--help", "?"):
        return SmsCommand("help")
    words = text.split(maxsplit=1)
    from_name = None
    if words and (option := _FROM_OPTION.match(words[0])):
        from_name = option.group(1)
        text = words[1] if len(words) > 1 else ""
    to_parts: list[str] = []
    rest = text
    while word := _FIRST_WORD.match(rest):
        head, rest = word.group(1), word.group(2)
        to_parts.append(head)
        if not head.endswith(",") and not rest.lstrip().startswith(","):
            break
    to = "".join(to_parts).strip(", ")
    message = rest.strip()
    if not message:
        return SmsCommand("modal", to=to, from_name=from_name)
    return SmsCommand("send", to=to, text=message, from_name=from_name)
