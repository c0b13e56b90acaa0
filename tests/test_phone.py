import pytest

from bot.core.phone import destination_refusal, mask, parse_number, region_of
from bot.errors import InvalidNumber


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+447700900123", "GB", "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("07700-900123", "GB", "+447700900123"),
        ("00447700900123", "ES", "+447700900123"),
        ("600 000 001", "ES", "+34600000001"),
        ("+1 416 555 0199", "GB", "+14165550199"),
    ],
)
def test_parses_national_and_international_input_to_e164(
    text: str, region: str, expected: str
) -> None:
    assert parse_number(text, region) == expected


@pytest.mark.parametrize("text", ["hello", "+44", "0770090", "+4477009001234567", "", "+999123456"])
def test_rejects_what_is_not_a_valid_number(text: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number(text, "GB")
    assert "number" in str(caught.value)


def test_us_is_refused_by_region_but_canada_is_not() -> None:
    us = parse_number("+1 212 555 0123", "GB")
    canada = parse_number("+1 416 555 0199", "GB")
    assert region_of(us) == "US"
    assert region_of(canada) == "CA"
    assert destination_refusal(us) == "2Chat does not support A2P messaging to US numbers"
    assert destination_refusal(canada) is None
    assert destination_refusal("+447700900123") is None


def test_mask_keeps_country_code_and_last_four_digits() -> None:
    assert mask("+447700900123") == "+44•••••0123"
    assert mask("+14165550199") == "+1•••••0199"


def test_unlisted_but_possible_ranges_are_accepted_outside_plus_one() -> None:
    # Ofcom's drama range is not "valid" to phonenumbers, yet the spec's example uses it.
    assert parse_number("+447700900123", "GB") == "+447700900123"
    assert region_of("+447700900123") == "GB"
    with pytest.raises(InvalidNumber):
        parse_number("+1 555 010 0123", "GB")  # +1 needs a listed range to rule out the US
