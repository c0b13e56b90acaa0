"""SMS segment counting and splitting (GSM-7 and UCS-2 as 3GPP TS 23.038 defines them).

Carriers bill per segment, so the app must know, before sending, which encoding a text will
travel in and how many parts it becomes. A text whose every character is in the GSM 7-bit
default alphabet or its extension table goes as GSM-7 (160 septets single, 153 per part of a
multipart message, extension characters cost 2 because they are sent as ESC + code);
anything else goes as UCS-2 (70 UTF-16 code units single, 67 per part, a non-BMP character
such as an emoji costs 2). Parts never split an escape pair or a surrogate pair, so a part
that would end in the middle of one ends one unit short instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

# The GSM 7-bit default alphabet in code order 0x00-0x7F. Position 0x1B is ESC, which
# introduces an extension character and is not a user character, so it is left out of the set.
_GSM7_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_ESC = "\x1b"

GSM7_BASIC: frozenset[str] = frozenset(_GSM7_TABLE) - {_ESC}
"""The 127 user characters of the GSM-7 default alphabet (128 code points minus ESC)."""

GSM7_EXTENSION: frozenset[str] = frozenset("^{}\\[~]|€\x0c")
"""Characters of the GSM-7 extension table: each is sent as ESC + code, so costs 2 septets."""

_GSM7_ALL: frozenset[str] = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67


@dataclass(frozen=True)
class SegmentInfo:
    """How a text will be sent: its encoding, size in units and number of billed segments.

    ``units`` are septets for GSM-7 (extension characters count 2) and UTF-16 code units for
    UCS-2. The empty text has 0 segments: nothing would be sent or billed.
    """

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int
    per_segment: int
    first_non_gsm: str | None
    last_units: int | None = None
    """Units in the last part; None means "assume parts are packed full" (no boundary gaps)."""

    @property
    def remaining(self) -> int:
        """Units that still fit in the last segment before another segment is needed.

        For a single segment this is measured against the single-segment limit (160/70), which
        is what a sender can still type before the message turns multipart.
        """
        if self.segments == 0:
            return self.per_segment
        if self.last_units is not None:
            last = self.last_units
        else:
            last = self.units - (self.segments - 1) * self.per_segment
        return self.per_segment - last


def _is_gsm7(text: str) -> bool:
    return all(ch in _GSM7_ALL for ch in text)


def _first_non_gsm(text: str) -> str | None:
    return next((ch for ch in text if ch not in _GSM7_ALL), None)


def _gsm7_cost(ch: str) -> int:
    return 2 if ch in GSM7_EXTENSION else 1


def _ucs2_cost(ch: str) -> int:
    # A lone surrogate in a Python str is one code unit; only non-BMP code points need two.
    return 2 if ord(ch) > 0xFFFF else 1


def _split(text: str) -> tuple[Literal["GSM-7", "UCS-2"], int, list[tuple[str, int]]]:
    """Encoding, total units and the parts (with their unit counts) of ``text``.

    Greedy packing is optimal here: every character must go in order, and putting as much as
    fits into each part never leaves more for the later ones.
    """
    if _is_gsm7(text):
        encoding: Literal["GSM-7", "UCS-2"] = "GSM-7"
        cost, single, multi = _gsm7_cost, GSM7_SINGLE, GSM7_MULTI
    else:
        encoding = "UCS-2"
        cost, single, multi = _ucs2_cost, UCS2_SINGLE, UCS2_MULTI
    costs = [cost(ch) for ch in text]
    total = sum(costs)
    if not text:
        return encoding, 0, []
    if total <= single:
        return encoding, total, [(text, total)]
    parts: list[tuple[str, int]] = []
    start = 0
    used = 0
    for i, c in enumerate(costs):
        if used + c > multi:
            parts.append((text[start:i], used))
            start, used = i, 0
        used += c
    parts.append((text[start:], used))
    return encoding, total, parts


@functools.lru_cache(maxsize=256)
def analyze(text: str) -> SegmentInfo:
    """Encoding, size and segment count of ``text`` as an SMS; segments come from the split.

    Counting from the actual split (rather than dividing) is what makes the count exact when
    an escape or surrogate pair at a boundary pushes a unit into the next part. Kept for
    the last texts seen: one send asks about its text at each of its steps.
    """
    encoding, total, parts = _split(text)
    gsm = encoding == "GSM-7"
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if gsm else (UCS2_SINGLE, UCS2_MULTI)
    return SegmentInfo(
        encoding=encoding,
        units=total,
        segments=len(parts),
        per_segment=multi if len(parts) > 1 else single,
        first_non_gsm=None if gsm else _first_non_gsm(text),
        last_units=parts[-1][1] if parts else 0,
    )


def split_segments(text: str) -> list[str]:
    """The parts ``text`` is sent as; they join back to ``text`` and ``[]`` for ``""``."""
    return [part for part, _ in _split(text)[2]]


GSM7_REPLACEMENTS: dict[str, str] = {
    # single quotes, primes and single guillemets
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u2039": "'",  # single left-pointing angle quotation mark
    "\u203a": "'",  # single right-pointing angle quotation mark
    # double quotes, double prime and guillemets
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # left-pointing double angle quotation mark
    "\u00bb": '"',  # right-pointing double angle quotation mark
    # dashes, hyphens, minus and bullet
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2022": "-",  # bullet
    # ellipsis
    "\u2026": "...",
    # spaces: tab, no-break and the typographic spaces U+2000..U+200A
    "\t": " ",
    "\u00a0": " ",
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    **{chr(cp): " " for cp in range(0x2000, 0x200B)},
}
"""Typographic characters (as pasted from editors and phones) and their GSM-7 look-alikes.

One curly quote turns a whole message into UCS-2, cutting a segment from 160 to 70 units, so
offering this substitution can halve or better what a text costs.
"""

_REPLACEMENT_TABLE = str.maketrans(GSM7_REPLACEMENTS)


def gsm7_cleanup(text: str) -> str:
    """Replace typographic characters by their GSM-7 look-alikes; change nothing else."""
    return text.translate(_REPLACEMENT_TABLE)
