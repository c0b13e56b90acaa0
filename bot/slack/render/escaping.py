"""How text the bridge did not write is shown in Slack.

``untrusted`` is the one escaping function for mrkdwn: every SMS text, reply, name, reason
and 2Chat error goes through it. ``show_number`` and ``shown`` are the one place that decides
whether a number is shown in full or masked.
"""

from __future__ import annotations

import re

from bot.core.phone import mask

# A whole international number, as the bridge stores and shows them.
E164 = re.compile(r"\+[1-9]\d{6,14}")


def untrusted(text: str) -> str:
    """Text the bridge did not write (SMS texts and replies, names, reasons, 2Chat's errors)
    shown literally. Escaping ``&``, ``<`` and ``>`` is Slack's documented mrkdwn escaping:
    ``<!channel>``, ``<@U…>``, ``<#C…>``, ``<!subteam^…>`` and ``<https://evil|slack.com>``
    then show as typed, and notify or disguise nothing."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def show_number(number: str, masked: bool) -> str:
    """A number as every message shows it: masked when the policy says so."""
    return mask(number) if masked else number


def shown(text: str, masked: bool) -> str:
    """Free text not of our making (an error, a reason) as shown: escaped, and any phone
    number in it masked like every other number the bridge shows."""
    text = untrusted(text)
    return E164.sub(lambda found: show_number(found.group(), masked), text)


def quote(text: str) -> str:
    """Text as a Slack block quote, every line of it (call ``untrusted`` first)."""
    return "\n".join("> " + line for line in text.splitlines() or [""])
