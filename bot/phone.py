"""Phone numbers: parsing to E.164, destination rules and masking, all via phonenumbers."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from bot.errors import InvalidNumber

# 2Chat does not support A2P messaging to the US (SPEC §1). Canada shares +1, so this is a
# region check, never a prefix check.
REFUSED_REGIONS: dict[str, str] = {
    "US": "2Chat does not support A2P messaging to US numbers",
}


def parse_number(text: str, region: str) -> str:
    """Parse ``text`` (E.164, international or national in ``region``) into E.164.

    Raises ``InvalidNumber`` with a reason a user can act on.
    """
    candidate = text.strip()
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        number = phonenumbers.parse(candidate, region.upper())
    except NumberParseException as exc:
        raise InvalidNumber(f"{text!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """The ISO region of an E.164 number (e.g. "CA" for +1 416…), or None if unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except NumberParseException:
        return None


def destination_refusal(e164: str) -> str | None:
    """Why a number may not be texted at all, or None when it may."""
    return REFUSED_REGIONS.get(region_of(e164) or "")


def mask(e164: str) -> str:
    """Hide the middle of a number: "+447700900123" → "+44•••••0123"."""
    try:
        country = phonenumbers.parse(e164, None).country_code
    except NumberParseException:
        return "•••••" + e164[-4:]
    return f"+{country}•••••{e164[-4:]}"
