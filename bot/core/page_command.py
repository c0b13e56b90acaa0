"""Parsing "@bot page [targets] <text>", which is untrusted user input."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.commands import NO_NAMES, sms_text, take_recipients, unslack
from bot.core.model import Policy
from bot.core.policy import split_targets
from bot.core.rosters import names_recipient

_FIRST_WORD = re.compile(r"\s*(\S+)(.*)", re.DOTALL)


@dataclass(frozen=True)
class PageCommand:
    """What "@bot page …" asked for: explicit targets (may be empty) and the text."""

    targets: tuple[str, ...]
    text: str


def after_mention(text: str, bot_user_id: str | None) -> str:
    """The text after the first mention of the bridge (all of it if there is none)."""
    if bot_user_id:
        match = re.search(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", text)
        if match:
            return text[match.end() :]
    return re.sub(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>", "", text)


def _names_someone(first_word: str) -> bool:
    """Whether the first word can only be a recipient: a Slack tel: link or an international
    number ("+4477…"). Such a word is never treated as the start of the text."""
    return first_word.startswith("<tel:") or bool(re.match(r"^\+\d", first_word))


def parse_page(
    policy: Policy, text: str, bot_user_id: str | None, names: Mapping[str, str] = NO_NAMES
) -> PageCommand | None:
    """Parse "<@bot> page [targets] <text>"; None when it is not a page command. ``names``
    names the users mentioned without a label in the text.

    The first word (a comma list continues over "alice, bob") is a target when it names a
    recipient: a contact, a group (one kept in Slack too) or a phone number; a list counts
    when any item does, so a typo in it is reported rather than texted. A phone number or
    tel: link is always a target, so a wrong number is refused instead of silently paging
    the channel's default roster.
    Otherwise the first word is the start of the text. Recipients come from link targets,
    never from a link's label; links in the text are read as ``sms_text`` reads them.
    """
    first = _FIRST_WORD.match(after_mention(text, bot_user_id))
    if not first or unslack(first.group(1)).lower().rstrip(":") != "page":
        return None
    args = first.group(2)
    max_segments = policy.defaults.max_segments
    to, rest = take_recipients(args)
    targets = split_targets(to)
    head = _FIRST_WORD.match(args)
    if any(names_recipient(policy, target) for target in targets) or (
        head is not None and _names_someone(head.group(1))
    ):
        return PageCommand(tuple(targets), sms_text(rest, max_segments, names).text.strip())
    return PageCommand((), sms_text(args, max_segments, names).text.strip())
