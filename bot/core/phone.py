"""Phone numbers: parsing to E.164, destination rules and masking, all via phonenumbers."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

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
    if not (phonenumbers.is_valid_number(number) or _plausible_unlisted(number)):
        raise InvalidNumber(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _plausible_unlisted(number: phonenumbers.PhoneNumber) -> bool:
    """A number of a mobile's length in a country phonenumbers knows, in a range it does not
    list as assigned (e.g. Ofcom's +44 7700 900xxx, which the spec's example uses).

    Not for +1: several countries share it, and only a listed range tells the US apart.
    """
    region = phonenumbers.region_code_for_country_code(number.country_code)
    return (
        number.country_code != 1
        and region not in ("ZZ", "001")
        and phonenumbers.is_possible_number_for_type(number, PhoneNumberType.MOBILE)
    )


def region_of(e164: str) -> str | None:
    """The ISO region of an E.164 number (e.g. "CA" for +1 416…), or None if unknown."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region is None and number.country_code != 1:
        region = phonenumbers.region_code_for_country_code(number.country_code)
    return region if region not in (None, "ZZ", "001") else None


def destination_refusal(e164: str) -> str | None:
    """Why a number may not be texted at all, or None when it may."""
    region = region_of(e164)
    if region is None and e164.startswith("+1"):
        return "cannot tell whether this +1 number is in the US, where 2Chat cannot send"
    return REFUSED_REGIONS.get(region or "")


def mask(e164: str) -> str:
    """Hide the middle of a number: "+447700900123" → "+44•••••0123"."""
    try:
        country = phonenumbers.parse(e164, None).country_code
    except NumberParseException:
        return "•••••" + e164[-4:]
    return f"+{country}•••••{e164[-4:]}"
