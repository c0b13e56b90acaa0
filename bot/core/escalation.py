"""Escalation ladders: the policy's shape, reply codes and the texts they add, as pure code.

A ladder pages its tiers in turn until someone acknowledges. Each SMS of an escalating page
ends with the page's reply code ("Reply A7 to ack"), so a person with several open pages
can say which one they are taking; the code is unique among open pages and not handed out
again for ``CODE_QUIET`` after it was issued, so a late reply never acks a newer page.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_ACKED_SMS = "Acked by {name} at {time} - no action needed"
ACKED_SMS_FIELDS: tuple[str, ...] = ("name", "time")
CODE_QUIET = timedelta(hours=72)
CODE_LENGTHS = (2, 3, 4)  # 240, then 2,400, then 24,000 codes
# Letters that cannot be misread as digits (no I, O), then digits: "A7", later "A72".
_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_CODE_DIGITS = "0123456789"


@dataclass(frozen=True)
class Tier:
    """One rung: whom it texts (group, contact or number names) and how long it waits for
    an ack before the next rung is texted."""

    page: tuple[str, ...]
    wait: timedelta | None = None  # None on the last rung: it waits for the next round


@dataclass(frozen=True)
class Escalation:
    """An ``escalations.<name>`` entry: its tiers, how many more rounds after the first,
    and the SMS that tells everyone texted that the page was acknowledged ("" for none)."""

    tiers: tuple[Tier, ...]
    repeat: int = 0
    acked_sms: str = DEFAULT_ACKED_SMS

    def step_after(self, tier: int, round_: int) -> tuple[int, int] | None:
        """The (tier, round) that follows ``tier`` of ``round_``, or None when the ladder
        (with its repeats) is exhausted."""
        if tier + 1 < len(self.tiers):
            return tier + 1, round_
        if round_ < self.repeat:
            return 0, round_ + 1
        return None

    def wait_after(self, tier: int) -> timedelta:
        """How long ``tier`` waits for an ack; the last rung waits as long as the first."""
        return self.tiers[tier].wait or self.tiers[0].wait or timedelta(minutes=5)


def rung_label(tier: int, round_: int) -> str:
    """A rung as people read it: "Tier 2", or "Tier 2 (round 2)" when the ladder repeats."""
    return f"Tier {tier + 1}" + (f" (round {round_ + 1})" if round_ else "")


def code_suffix(code: str) -> str:
    """What ends every SMS of an escalating page."""
    return f" Reply {code} to ack"


def free_codes(busy: Collection[str]) -> Iterator[str]:
    """Reply codes not in ``busy``, shortest first and in random order within a length
    (so a code says nothing about how many pages came before): "A7", then "A72"…"""
    shuffle = secrets.SystemRandom().shuffle
    for length in CODE_LENGTHS:
        codes = [
            letter + "".join(digits)
            for letter in _CODE_LETTERS
            for digits in itertools.product(_CODE_DIGITS, repeat=length - 1)
        ]
        free = [code for code in codes if code not in busy]
        shuffle(free)
        yield from free


def reply_code(keyword: str, ack_words: Collection[str]) -> str | None:
    """The reply code a reply names ("A7", "a7 ok", "ack A7"), upper-cased; None when the
    reply is anything else, so a sentence that happens to contain a code is not an ack.
    ``keyword`` is the reply as ``model.reply_keyword`` reads it."""
    words = keyword.split()
    codes = [word for word in words if _looks_like_code(word)]
    if len(codes) != 1 or any(w not in ack_words for w in words if w != codes[0]):
        return None
    return codes[0].upper()


def _looks_like_code(word: str) -> bool:
    head, tail = word[:1].upper(), word[1:]
    return len(word) in CODE_LENGTHS and head in _CODE_LETTERS and tail.isdigit()


def acked_text(template: str, name: str, at: datetime) -> str:
    """The "acked" SMS from its template: ``{name}`` who acked, ``{time}`` when (UTC)."""
    return template.format(name=name, time=at.strftime("%H:%M UTC"))


# Requests a ladder records (its tiers, its "acked" SMS) carry dedupe keys with this prefix:
# the key makes each one single, and marks it as the policy's own (no sender re-check).
REQUEST_KEY_PREFIX = "escalation:"
_SUFFIX_RE = re.compile(r" Reply ([A-Z][0-9]{1,3}) to ack\Z")


def request_key(escalation_id: str, what: str) -> str:
    """The dedupe key of a request a ladder records: one per rung and round, one "acked"."""
    return f"{REQUEST_KEY_PREFIX}{escalation_id}:{what}"


def is_ladder_request(dedupe_key: str | None) -> bool:
    """Whether a request was recorded by a ladder rather than asked for by someone."""
    return dedupe_key is not None and dedupe_key.startswith(REQUEST_KEY_PREFIX)


def code_of(text: str) -> str | None:
    """The reply code an escalating page's text ends with, if it has one."""
    match = _SUFFIX_RE.search(text)
    return match.group(1) if match else None
