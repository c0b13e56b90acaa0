"""Durations as the policy file writes them: read strictly, shown the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config.durations import format_duration, parse_duration, parse_interval


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90", timedelta(seconds=90)),
        (" 45 ", timedelta(seconds=45)),
        (120, timedelta(minutes=2)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0m",
        "-5m",
        "-5",
        "",
        "m",
        "1.5h",
        "10 m",
        "10M",
        "1w",
        "h1",
        "99999999999999d",
        "9" * 5000,
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30s", "10m", "2h", "1d", "1h30m", "1d2h3m4s"])
def test_format_duration_writes_what_parse_duration_reads(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_a_poll_interval_may_be_a_fraction_of_a_second() -> None:
    assert parse_interval("0.5s") == timedelta(milliseconds=500)
    assert parse_interval("2m") == timedelta(minutes=2)
    with pytest.raises(ValueError):
        parse_interval("0.0s")
