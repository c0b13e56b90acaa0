"""Parsing of the ``/sms`` command text, which is untrusted user input, and turning Slack's
markup into the plain text a phone shows."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from bot.core.segments import analyze

# Slack wraps links, phone numbers and mentions as <target|label> or <target>.
_SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
# A word of the command; a Slack <target|label> counts as one, even with spaces in its label.
_WORD = re.compile(r"\s*((?:<[^<>]*>|\S)+)(.*)", re.DOTALL)
_FROM_OPTION = re.compile(r"^from[:=](\S+)$", re.IGNORECASE)
# Targets whose scheme is noise in plain text: the number or address is what matters.
_ADDRESS_SCHEME = re.compile(r"^(?:tel|mailto):", re.IGNORECASE)
_ANY_SCHEME = re.compile(r"^(?:https?://|tel:|mailto:)", re.IGNORECASE)
_NOT_DIALLED = re.compile(r"[^\d+]")
# A mention of a Slack user or user group, which names a recipient by id.
_SLACK_RECIPIENT = re.compile(r"@[UW][A-Z0-9]+|!subteam\^S[A-Z0-9]+")
# A user mention without a label ("<@U…>", or "<@U…|>" with an empty one): Slack shows the
# person's name, so it is looked up.
_UNLABELLED_USER = re.compile(r"<@([UW][A-Z0-9]+)\|?>")
# What a mention reads as when its name cannot be looked up; never a raw user id.
SOMEONE = "someone"
# Slack's special mentions (<!here>, <!channel>, <!everyone>), as Slack shows them.
_SPECIAL_MENTIONS = frozenset({"here", "channel", "everyone"})
NO_NAMES: Mapping[str, str] = {}
_HELP_WORDS = ("help", "-h", "--help", "?")
# Control characters other than tab and newline: no phone shows them, and Postgres refuses a
# NUL in text outright, which failed the whole request.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Half of a UTF-16 pair, which JSON escapes can carry alone; no UTF-8 encoder (the store's,
# 2Chat's, RE2's) accepts one, and the failure surfaced far from where the text came in.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text from Slack as the rest of the bridge can store and send it: control characters
    other than tab and newline dropped, lone surrogates shown as U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", _CONTROL.sub("", text))


@dataclass(frozen=True)
class SmsText:
    """Slack markup as an SMS reads it, and whether a link had its URL spelled out after its
    label (SMS has no link labels), so a preview can say so."""

    text: str
    links_spelled_out: bool


@dataclass(frozen=True)
class SmsCommand:
    """What the user asked for: help, a send, or the modal (optionally prefilled)."""

    kind: Literal["help", "send", "modal"]
    to: str = ""
    text: str = ""
    from_name: str | None = None
    links_spelled_out: bool = False


def _repeats_target(label: str, target: str) -> bool:
    """Whether a label only repeats its link's target, as Slack writes a typed number
    ("+44 7700 900999" for tel:+447700900999), address or bare URL ("x.test")."""
    if target.lower().startswith("tel:"):
        return _NOT_DIALLED.sub("", label) == _NOT_DIALLED.sub("", target)

    def bare(text: str) -> str:
        return _ANY_SCHEME.sub("", text.strip().lower()).rstrip("/")

    return bare(label) == bare(target)


def _mention_text(target: str, label: str | None, names: Mapping[str, str]) -> str:
    """A user, channel or special mention as Slack shows it: "@name", "#channel",
    "@here"; an unlabelled user by the name ``names`` gives them."""
    if target.startswith("@"):
        return "@" + (label or names.get(target[1:], SOMEONE))
    if target.startswith("#"):
        return "#" + (label or "channel")
    keyword = target[1:].split("^", 1)[0]
    if keyword in _SPECIAL_MENTIONS:
        return "@" + keyword
    if keyword == "subteam":
        return "@" + (label or "group").removeprefix("@")
    return label or ""  # <!date^…|fallback> and the like: the text Slack would show


def _link_text(
    target: str, label: str | None, bare: bool = False, names: Mapping[str, str] = NO_NAMES
) -> tuple[str, bool]:
    """One <target|label> as plain text, and whether its URL had to be spelled out: a label
    alone would hide where a link goes, so it becomes "label (URL)" (``bare``: the URL). A
    label that only repeats its web address gives way to the address, scheme and all, so a
    phone opens it as it was linked."""
    if target.startswith(("@", "#", "!")):
        return _mention_text(target, label, names), False
    address = _ADDRESS_SCHEME.sub("", target)
    if not label:
        return address, False
    if _repeats_target(label, target):
        return (label if target.lower().startswith("tel:") else address), False
    return (address if bare else f"{label} ({address})"), True


def unnamed_users(value: object) -> set[str]:
    """The users mentioned without a name in Slack text, or anywhere in a message's text,
    attachments and rich-text blocks: the ones to look up so they read as "@name"."""
    return set(_unnamed(value))


def _unnamed(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield from _UNLABELLED_USER.findall(value)
    elif isinstance(value, dict):
        if value.get("type") == "user" and isinstance(value.get("user_id"), str):
            yield value["user_id"]
        for item in value.values():
            yield from _unnamed(item)
    elif isinstance(value, list):
        for item in value:
            yield from _unnamed(item)


def read_slack_text(
    mrkdwn: str, bare_links: bool = False, names: Mapping[str, str] = NO_NAMES
) -> SmsText:
    """Slack message or command text as an SMS carries it: &amp;/&lt;/&gt; undone, mentions
    as Slack shows them (@name, #channel, @here; ``names`` names unlabelled users), numbers
    and addresses as written, and links as "label (URL)" (or, with ``bare_links``, the URL
    alone)."""
    spelled_out = False

    def replace(match: re.Match[str]) -> str:
        nonlocal spelled_out
        text, spelled = _link_text(match.group(1), match.group(2), bare_links, names)
        spelled_out = spelled_out or spelled
        return text

    # Cleaned after unescaping: an entity such as &#27; is a control character too.
    return SmsText(clean_text(html.unescape(_SLACK_LINK.sub(replace, mrkdwn))), spelled_out)


def sms_text(
    mrkdwn: str, max_segments: int | None = None, names: Mapping[str, str] = NO_NAMES
) -> SmsText:
    """The SMS text of Slack markup: links as "label (URL)", or as the bare URL when only
    that keeps the text within ``max_segments`` (a longer text would be refused)."""
    spelled = read_slack_text(mrkdwn, names=names)
    if not spelled.links_spelled_out or max_segments is None:
        return spelled
    if analyze(spelled.text.strip()).segments <= max_segments:
        return spelled
    bare = read_slack_text(mrkdwn, bare_links=True, names=names)
    return bare if analyze(bare.text.strip()).segments <= max_segments else spelled


def unslack(text: str, names: Mapping[str, str] = NO_NAMES) -> str:
    """The plain text of Slack markup (see ``read_slack_text``)."""
    return read_slack_text(text, names=names).text


def _recipient_text(word: str) -> str:
    """A recipient word as plain text. A linked number or address counts by its target,
    never its label: Slack labels a typed number with spaces ("+44 7700 900999"). A user
    or user group mention stays "<@U…>" / "<!subteam^S…>", the id without its label."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if _SLACK_RECIPIENT.fullmatch(target):
            return f"<{target}>"  # a user or user group, by id: the policy resolves it
        if target.startswith(("@", "#", "!")):
            return _link_text(target, label)[0]
        return _ADDRESS_SCHEME.sub("", target)

    return "".join(html.unescape(_SLACK_LINK.sub(replace, word)).split())


def take_recipients(raw: str) -> tuple[str, str]:
    """Split Slack command text into its recipients as plain text ("alice,+4477…") and the
    rest, still in Slack markup. Recipients are the first word; a word ending in a comma
    continues the list, so "alice, bob hello" means alice and bob."""
    to_parts: list[str] = []
    rest = raw
    while word := _WORD.match(rest):
        head, rest = word.group(1), word.group(2)
        to_parts.append(_recipient_text(head))
        if not head.endswith(",") and not rest.lstrip().startswith(","):
            break
    return "".join(to_parts).strip(", "), rest


def parse_sms_command(
    raw: str, max_segments: int | None = None, names: Mapping[str, str] = NO_NAMES
) -> SmsCommand:
    """Parse "[from:NAME] <to>[, <to>…] <text>", "help", or nothing (→ modal); links in
    the text are read as ``sms_text`` reads them under ``max_segments``, unlabelled user
    mentions by ``names``."""
    if unslack(raw).strip().lower() in _HELP_WORDS:
        return SmsCommand("help")
    from_name = None
    rest = raw
    first = _WORD.match(raw)
    if first and (option := _FROM_OPTION.match(unslack(first.group(1)))):
        from_name = option.group(1)
        rest = first.group(2)
    to, rest = take_recipients(rest)
    message = sms_text(rest, max_segments, names)
    text = message.text.strip()
    if not text:
        return SmsCommand("modal", to=to, from_name=from_name)
    return SmsCommand("send", to, text, from_name, message.links_spelled_out)
