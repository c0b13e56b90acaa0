"""Tests for bot.core.segments: GSM-7 / UCS-2 detection, counting and splitting."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_REPLACEMENTS,
    SegmentInfo,
    analyze,
    gsm7_cleanup,
    split_segments,
)

# --- An independent GSM-7 encoder, written from the 3GPP TS 23.038 tables -------------------
# Deliberately not derived from bot.core.segments: every entry names its septet code explicitly, so
# a slip in the module's table (a wrong or missing character) shows up as a disagreement.

ESC = 0x1B

# fmt: off
BASIC_CODES: dict[str, int] = {
    "@": 0x00, "\u00a3": 0x01, "$": 0x02, "\u00a5": 0x03,  # @ £ $ ¥
    "\u00e8": 0x04, "\u00e9": 0x05, "\u00f9": 0x06, "\u00ec": 0x07,  # è é ù ì
    "\u00f2": 0x08, "\u00c7": 0x09, "\n": 0x0A, "\u00d8": 0x0B,  # ò Ç LF Ø
    "\u00f8": 0x0C, "\r": 0x0D, "\u00c5": 0x0E, "\u00e5": 0x0F,  # ø CR Å å
    "\u0394": 0x10, "_": 0x11, "\u03a6": 0x12, "\u0393": 0x13,  # Δ _ Φ Γ
    "\u039b": 0x14, "\u03a9": 0x15, "\u03a0": 0x16, "\u03a8": 0x17,  # Λ Ω Π Ψ
    "\u03a3": 0x18, "\u0398": 0x19, "\u039e": 0x1A,  # Σ Θ Ξ  (0x1B is ESC)
    "\u00c6": 0x1C, "\u00e6": 0x1D, "\u00df": 0x1E, "\u00c9": 0x1F,  # Æ æ ß É
    " ": 0x20, "!": 0x21, '"': 0x22, "#": 0x23, "\u00a4": 0x24,  # ¤ (not $) at 0x24
    "%": 0x25, "&": 0x26, "'": 0x27, "(": 0x28, ")": 0x29, "*": 0x2A, "+": 0x2B,
    ",": 0x2C, "-": 0x2D, ".": 0x2E, "/": 0x2F,
    ":": 0x3A, ";": 0x3B, "<": 0x3C, "=": 0x3D, ">": 0x3E, "?": 0x3F,
    "\u00a1": 0x40,  # ¡ (not @) at 0x40
    "\u00c4": 0x5B, "\u00d6": 0x5C, "\u00d1": 0x5D, "\u00dc": 0x5E, "\u00a7": 0x5F,  # Ä Ö Ñ Ü §
    "\u00bf": 0x60,  # ¿ (not `) at 0x60
    "\u00e4": 0x7B, "\u00f6": 0x7C, "\u00f1": 0x7D, "\u00fc": 0x7E, "\u00e0": 0x7F,  # ä ö ñ ü à
}
# fmt: on
BASIC_CODES.update({chr(ord("0") + i): 0x30 + i for i in range(10)})
BASIC_CODES.update({chr(ord("A") + i): 0x41 + i for i in range(26)})
BASIC_CODES.update({chr(ord("a") + i): 0x61 + i for i in range(26)})

EXTENSION_CODES: dict[str, int] = {
    "\x0c": 0x0A,  # form feed
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "\u20ac": 0x65,  # €
}


def gsm7_encode(text: str) -> list[tuple[int, ...]] | None:
    """Septets of ``text``, one tuple per character (ESC pairs stay together); None if not GSM."""
    out: list[tuple[int, ...]] = []
    for ch in text:
        if ch in BASIC_CODES:
            out.append((BASIC_CODES[ch],))
        elif ch in EXTENSION_CODES:
            out.append((ESC, EXTENSION_CODES[ch]))
        else:
            return None
    return out


def count_parts(unit_sizes: list[int], single: int, multi: int) -> int:
    """Independent segment count: pack atomic units (escape/surrogate pairs) greedily."""
    if not unit_sizes:
        return 0
    if sum(unit_sizes) <= single:
        return 1
    parts, used = 1, 0
    for size in unit_sizes:
        if used + size > multi:
            parts, used = parts + 1, 0
        used += size
    return parts


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def part_units(part: str) -> int:
    """Units of one part, measured by the test's own encoders."""
    encoded = gsm7_encode(part)
    if encoded is not None:
        return sum(len(septets) for septets in encoded)
    return utf16_units(part)


# --- the independent table itself -----------------------------------------------------------


def test_independent_table_is_complete() -> None:
    assert len(BASIC_CODES) == 127  # 128 code points minus ESC
    assert sorted(BASIC_CODES.values()) == [c for c in range(128) if c != ESC]
    assert len(EXTENSION_CODES) == 10


def test_module_alphabet_matches_3gpp_table() -> None:
    assert set(BASIC_CODES) == GSM7_BASIC
    assert set(EXTENSION_CODES) == GSM7_EXTENSION
    assert "\x1b" not in GSM7_BASIC


# --- GSM-7 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (159, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    info = analyze("a" * length)
    assert info.encoding == "GSM-7"
    assert info.units == length
    assert info.segments == segments
    assert info.per_segment == (160 if segments == 1 else 153)
    assert info.first_non_gsm is None
    assert len(split_segments("a" * length)) == segments


@pytest.mark.parametrize("n", [2, 3, 4, 10])
def test_gsm7_exact_multiples_of_153(n: int) -> None:
    text = "x" * (153 * n)
    assert analyze(text).segments == n
    assert analyze(text + "x").segments == n + 1
    assert [len(p) for p in split_segments(text)] == [153] * n


def test_extension_chars_count_two() -> None:
    info = analyze("€" * 80)
    assert (info.encoding, info.units, info.segments) == ("GSM-7", 160, 1)
    info = analyze("€" * 81)
    assert (info.units, info.segments) == (162, 2)
    for ch in "^{}\\[~]|€\x0c":
        assert analyze(ch).units == 2, repr(ch)
        assert analyze(ch).encoding == "GSM-7"


def test_extension_char_straddling_boundary_moves_to_next_part() -> None:
    # 152 septets, then '€' would occupy septets 153-154: the escape pair must not be split.
    text = "a" * 152 + "€" + "b" * 10
    parts = split_segments(text)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert analyze(text).segments == 2
    # Right at the edge the gap costs a segment: 152 + 2 + 152 = 306 septets packs into 2
    # parts only if the pair could be split; it cannot, so a third part is needed.
    text = "a" * 152 + "€" + "b" * 152
    assert analyze(text).units == 306
    assert analyze(text).segments == 3
    assert [part_units(p) for p in split_segments(text)] == [152, 153, 1]


def test_first_non_gsm() -> None:
    assert analyze("café").encoding == "GSM-7"  # é is in the basic set
    info = analyze("crêpe et café")
    assert info.encoding == "UCS-2"
    assert info.first_non_gsm == "ê"
    assert analyze("say “hi”").first_non_gsm == "“"
    assert analyze("ok 😀 ê").first_non_gsm == "😀"


# --- UCS-2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    text = "ж" * length
    info = analyze(text)
    assert info.encoding == "UCS-2"
    assert info.units == length
    assert info.segments == segments
    assert info.per_segment == (70 if segments == 1 else 67)
    assert len(split_segments(text)) == segments


def test_emoji_counts_two_and_is_never_split() -> None:
    assert analyze("😀").units == 2
    assert analyze("😀" * 35).segments == 1
    assert analyze("😀" * 35 + "a").segments == 2
    # 66 units, then the emoji would take units 67-68 of the first part: it moves on whole.
    text = "a" * 66 + "😀" + "b" * 10
    parts = split_segments(text)
    assert parts == ["a" * 66, "😀" + "b" * 10]
    assert analyze(text).units == 78
    assert analyze(text).segments == 2
    # and the gap can cost a segment: 66 + 2 + 66 = 134 units, yet 3 parts.
    text = "a" * 66 + "😀" + "b" * 66
    assert analyze(text).units == 134
    assert analyze(text).segments == 3


def test_one_non_gsm_char_switches_whole_text_to_ucs2() -> None:
    text = "a" * 100 + "ê"
    info = analyze(text)
    assert (info.encoding, info.units, info.segments) == ("UCS-2", 101, 2)


# --- empty text and remaining -----------------------------------------------------------------


def test_empty_text() -> None:
    info = analyze("")
    assert info.segments == 0
    assert info.units == 0
    assert info.encoding == "GSM-7"
    assert info.first_non_gsm is None
    assert info.remaining == 160
    assert split_segments("") == []


def test_remaining() -> None:
    assert analyze("a" * 150).remaining == 10
    assert analyze("a" * 160).remaining == 0
    assert analyze("a" * 161).remaining == 153 - 8
    assert analyze("ж" * 60).remaining == 10
    assert analyze("ж" * 71).remaining == 67 - 4
    # the gap left by a pushed escape pair is not counted as room in the last part
    assert analyze("a" * 152 + "€" + "b" * 152).remaining == 152


def test_remaining_means_what_it_says() -> None:
    for text in ["a" * 150, "a" * 200, "ж" * 50, "ж" * 100, "a" * 152 + "€" + "b"]:
        info = analyze(text)
        filler = "a" if info.encoding == "GSM-7" else "ж"
        assert analyze(text + filler * info.remaining).segments == max(info.segments, 1)
        assert analyze(text + filler * (info.remaining + 1)).segments == info.segments + 1


def test_segment_info_without_last_units_assumes_packed_parts() -> None:
    info = SegmentInfo("GSM-7", 200, 2, 153, None)
    assert info.remaining == 153 - 47


# --- cleanup -------------------------------------------------------------------------------


def test_gsm7_cleanup_makes_text_gsm7() -> None:
    text = "“Smart” quotes—dashes… it\u2019s «fine» • ok\u00a0now\ttab \u2039x\u203a"
    assert analyze(text).encoding == "UCS-2"
    cleaned = gsm7_cleanup(text)
    assert cleaned == '"Smart" quotes-dashes... it\'s "fine" - ok now tab \'x\''
    assert analyze(cleaned).encoding == "GSM-7"


def test_gsm7_cleanup_changes_nothing_else() -> None:
    text = "crêpe 😀 ж café €"
    assert gsm7_cleanup(text) == text


def test_every_replacement_is_gsm7() -> None:
    for src, dst in GSM7_REPLACEMENTS.items():
        assert len(src) == 1
        assert src not in BASIC_CODES and src not in EXTENSION_CODES, repr(src)
        assert gsm7_encode(dst) is not None, repr(dst)


# --- properties ------------------------------------------------------------------------------

gsm_chars = st.sampled_from(sorted(BASIC_CODES) + sorted(EXTENSION_CODES))
any_chars = st.one_of(
    gsm_chars,
    gsm_chars,
    st.characters(),
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji: surrogate pairs
    st.sampled_from(sorted(GSM7_REPLACEMENTS)),
)
gsm_texts = st.text(alphabet=gsm_chars, max_size=500)
any_texts = st.one_of(gsm_texts, st.text(alphabet=any_chars, max_size=300))


@settings(max_examples=300)
@given(any_texts)
def test_split_round_trips_and_fits(text: str) -> None:
    parts = split_segments(text)
    info = analyze(text)
    assert "".join(parts) == text
    assert len(parts) == info.segments
    assert all(parts)
    single, multi = (160, 153) if info.encoding == "GSM-7" else (70, 67)
    limit = multi if len(parts) > 1 else single
    assert info.per_segment == limit
    for part in parts:
        units = part_units(part) if info.encoding == "GSM-7" else utf16_units(part)
        assert units <= limit
    if info.encoding == "UCS-2":
        assert info.units == utf16_units(text)
        sizes = [utf16_units(ch) for ch in text]
        assert info.segments == count_parts(sizes, 70, 67)
    assert 0 <= info.remaining <= info.per_segment


@settings(max_examples=300)
@given(gsm_texts)
def test_independent_encoder_agrees_on_gsm_texts(text: str) -> None:
    encoded = gsm7_encode(text)
    assert encoded is not None
    info = analyze(text)
    assert info.encoding == "GSM-7"
    assert info.first_non_gsm is None
    assert info.units == sum(len(septets) for septets in encoded)
    assert info.segments == count_parts([len(s) for s in encoded], 160, 153)
    if info.segments > 1:
        assert info.segments >= math.ceil(info.units / 153)


@settings(max_examples=300)
@given(any_texts)
def test_independent_encoder_rejects_exactly_ucs2(text: str) -> None:
    info = analyze(text)
    encoded = gsm7_encode(text)
    assert (encoded is None) == (info.encoding == "UCS-2")
    if encoded is None:
        first = next(ch for ch in text if ch not in BASIC_CODES and ch not in EXTENSION_CODES)
        assert info.first_non_gsm == first


@given(st.text(alphabet=any_chars, max_size=200))
def test_cleanup_only_touches_replacement_keys(text: str) -> None:
    cleaned = gsm7_cleanup(text)
    expected = "".join(GSM7_REPLACEMENTS.get(ch, ch) for ch in text)
    assert cleaned == expected
