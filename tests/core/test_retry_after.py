"""Retry-After as Slack and 2Chat send it, and the values a broken header carries."""

from __future__ import annotations

import pytest

from bot.core.retry_after import header_retry_after, retry_after_seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("0", 0.0),
        (["7", "9"], 7.0),  # a client that keeps every value of a header
        (5, 5.0),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # the date form: the caller picks a pause
        ("-1", None),
        ("86400", None),  # a day is a broken header, not a pause
        ("soon", None),
        ("", None),
        ([], None),
        (None, None),
        (True, None),
    ],
)
def test_a_retry_after_value_is_read_as_seconds_or_as_unsaid(
    value: object, seconds: float | None
) -> None:
    assert retry_after_seconds(value) == seconds


def test_the_header_is_found_whatever_the_case_of_its_name() -> None:
    assert header_retry_after({"content-type": "x", "RETRY-after": "3"}) == 3.0
    assert header_retry_after({"Retry-After": ["4"]}) == 4.0
    assert header_retry_after({"content-type": "x"}) is None
