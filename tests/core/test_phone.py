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


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("00 44 7700 900123", "GB"),
        ("0011 44 7700 900123", "AU"),
        ("001 44 7700 900123", "KR"),
        ("011 44 7700 900123", "US"),
    ],
)
def test_international_prefix_is_the_regions_own(text: str, region: str) -> None:
    assert parse_number(text, region) == "+447700900123"


def test_00_is_not_an_international_prefix_where_the_region_dials_another() -> None:
    # In Australia "00…" is not how you dial abroad (0011 is), so it is not read as "+".
    with pytest.raises(InvalidNumber):
        parse_number("00447700900123", "AU")


@pytest.mark.parametrize("text", ["hello", "+44", "0770090", "+4477009001234567", "", "+999123456"])
def test_rejects_what_is_not_a_valid_number(text: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number(text, "GB")
    assert "number" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "+44 7700 900123 ext. 5",
        "+447700900123x5",
        "+447700900123;ext=5",
        "07700 900123 extension 5",
        "+1 416 555 0199 ext 5",
    ],
)
def test_a_number_with_an_extension_is_refused_not_trimmed(text: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_number(text, "GB")
    assert "extension (5)" in str(caught.value)
    assert "cannot dial" in str(caught.value)


def test_us_is_refused_by_region_but_canada_is_not() -> None:
    us = parse_number("+1 212 555 0123", "GB")
    canada = parse_number("+1 416 555 0199", "GB")
    assert region_of(us) == "US"
    assert region_of(canada) == "CA"
    assert destination_refusal(us) == "2Chat does not support A2P messaging to US numbers"
    assert destination_refusal(canada) is None
    assert destination_refusal("+447700900123") is None


@pytest.mark.parametrize(
    ("typed", "region", "name"),
    [
        ("+1 787 555 0123", "PR", "Puerto Rico"),
        ("+1 671 632 3333", "GU", "Guam"),
        ("+1 340 773 1234", "VI", "US Virgin Islands"),
        ("+1 684 633 1234", "AS", "American Samoa"),
        ("+1 670 234 5678", "MP", "Northern Mariana Islands"),
    ],
)
def test_us_territories_are_refused_like_the_us_and_named(
    typed: str, region: str, name: str
) -> None:
    number = parse_number(typed, "GB")
    assert region_of(number) == region
    assert destination_refusal(number) == (
        f"2Chat does not support A2P messaging to {name} numbers "
        f"({name} is a US territory, under US A2P rules)"
    )


@pytest.mark.parametrize("area_code", ["800", "833", "844", "855", "866", "877", "888"])
def test_toll_free_numbers_are_refused_as_toll_free(area_code: str) -> None:
    number = parse_number(f"+1 {area_code} 234 5678", "CA")
    refusal = destination_refusal(number)
    assert refusal is not None
    assert "toll-free" in refusal and f"+1 {area_code}" in refusal


@pytest.mark.parametrize(
    ("number", "region"),
    [("+18092345678", "DO"), ("+18762345678", "JM"), ("+16135550199", "CA")],
)
def test_other_plus_one_countries_with_8xx_look_alikes_stay_allowed(
    number: str, region: str
) -> None:
    assert parse_number(number, "GB") == number
    assert region_of(number) == region
    assert destination_refusal(number) is None


def test_mask_keeps_country_code_and_last_four_digits() -> None:
    assert mask("+447700900123") == "+44•••••0123"
    assert mask("+14165550199") == "+1•••••0199"


def test_unlisted_but_possible_ranges_are_accepted_outside_plus_one() -> None:
    # Ofcom's drama range is not "valid" to phonenumbers, yet examples and tests use it.
    assert parse_number("+447700900123", "GB") == "+447700900123"
    assert region_of("+447700900123") == "GB"
    with pytest.raises(InvalidNumber):
        parse_number("+1 555 010 0123", "GB")  # +1 needs a listed range to rule out the US


def test_a_run_of_zeros_is_no_number_in_any_region() -> None:
    """Found by the hardening property: '000000000000' in DE parsed to +4900000000000,
    which read back as another number."""
    for region in ("DE", "GB", "ES"):
        with pytest.raises(InvalidNumber):
            parse_number("000000000000", region)


def test_an_italian_landline_keeps_its_leading_zero() -> None:
    assert parse_number("+390612345678", "GB") == "+390612345678"
