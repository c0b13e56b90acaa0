"""Phone numbers: parsing to E.164, destination rules and masking, all via phonenumbers."""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from bot.errors import InvalidNumber

_NO_A2P = "2Chat does not support A2P messaging to"

# US territories are on US carriers under the US A2P rules, so they are refused like the US.
US_TERRITORIES: dict[str, str] = {
    "PR": "Puerto Rico",
    "GU": "Guam",
    "VI": "US Virgin Islands",
    "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}

# 2Chat cannot send A2P messages to the US. Canada shares +1, so this is a region check,
# never a prefix check.
REFUSED_REGIONS: dict[str, str] = {
    "US": f"{_NO_A2P} US numbers",
    **{
        code: f"{_NO_A2P} {name} numbers ({name} is a US territory, under US A2P rules)"
        for code, name in US_TERRITORIES.items()
    },
}

# North American toll-free area codes: shared by the whole +1 zone and handled as US A2P
# traffic. Only these: other +1 8XX codes are countries (809 is the Dominican Republic).
TOLL_FREE_AREA_CODES = frozenset({"800", "833", "844", "855", "866", "877", "888"})


# Parsing is pure and costs more than the rest of a decision: every send decides twice
# (at submit and at send time), over the same contacts and numbers.
@functools.lru_cache(maxsize=16384)
def parse_number(text: str, region: str) -> str:
    """Parse ``text`` (E.164, international or national in ``region``) into E.164.

    ``region``'s own international prefix counts as "+" (00 in GB, 0011 in AU, 011 in the
    US). Raises ``InvalidNumber`` with a reason a user can act on.
    """
    try:
        number = phonenumbers.parse(text.strip(), region.upper())
    except NumberParseException as exc:
        raise InvalidNumber(f"{text!r} is not a phone number") from exc
    if number.extension:
        raise InvalidNumber(
            f"{text!r} has an extension ({number.extension}), which a text message cannot "
            "dial: give the number without it"
        )
    if not (phonenumbers.is_valid_number(number) or _plausible_unlisted(number)):
        raise InvalidNumber(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _plausible_unlisted(number: phonenumbers.PhoneNumber) -> bool:
    """A number of a mobile's length in a country phonenumbers knows, in a range it does not
    list as assigned (e.g. Ofcom's +44 7700 900xxx, reserved for examples and tests).

    Not for +1: several countries share it, and only a listed range tells the US apart. Not
    for a national number that starts with zeros: only listed ranges (Italy's landlines)
    keep them, and an unlisted one would not read back as the same number.
    """
    country = number.country_code
    if country is None or country == 1 or number.italian_leading_zero:
        return False
    known = phonenumbers.region_code_for_country_code(country) not in ("ZZ", "001")
    return known and phonenumbers.is_possible_number_for_type(number, PhoneNumberType.MOBILE)


@functools.lru_cache(maxsize=16384)
def region_of(e164: str) -> str | None:
    """The ISO region of an E.164 number (e.g. "CA" for +1 416…), or None if unknown."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    country = number.country_code
    if region is None and country is not None and country != 1:
        region = phonenumbers.region_code_for_country_code(country)
    return region if region not in (None, "ZZ", "001") else None


def destination_refusal(e164: str) -> str | None:
    """Why a number may not be texted at all, or None when it may."""
    area_code = e164[2:5] if e164.startswith("+1") else ""
    if area_code in TOLL_FREE_AREA_CODES:
        return f"{_NO_A2P} toll-free numbers (+1 {area_code} is a North American toll-free code)"
    region = region_of(e164)
    if region is None and e164.startswith("+1"):
        return "cannot tell whether this +1 number is in the US, where 2Chat cannot send"
    return REFUSED_REGIONS.get(region or "")


@functools.lru_cache(maxsize=16384)  # every log line of a send masks its number
def mask(e164: str) -> str:
    """Hide the middle of a number: "+447700900123" → "+44•••••0123"."""
    try:
        country = phonenumbers.parse(e164, None).country_code
    except NumberParseException:
        return "•••••" + e164[-4:]
    return f"+{country}•••••{e164[-4:]}"
