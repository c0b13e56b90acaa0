"""Both log formats get the same scrubbing: no known secret, no phone number in full."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import aiohttp
import pytest

from bot.app import slack_client
from bot.errors import SettingsError
from bot.logs import configure_logging
from bot.settings import load_settings

SECRET = "xoxb-1-very-secret-token"
NUMBER = "+447700900123"
MASKED = "+44•••••0123"
# The loggers configure_logging quietens: put back as they were for the rest of the suite.
NOISY = ("slack_sdk", "slack_bolt", "aiohttp.access")
GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1-secret-bot",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "TWOCHAT_API_KEY": "UAK-secret-key",
}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where the tests point configure_logging's handler, with the root logger restored."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quietened = {name: logging.getLogger(name).level for name in NOISY}
    yield io.StringIO()
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in quietened.items():
        logging.getLogger(name).setLevel(level)


def configure(stream: io.StringIO, secrets: list[str], *log_format: str) -> None:
    """configure_logging, with its one stderr handler writing to ``stream`` instead."""
    configure_logging("INFO", secrets, *log_format)
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def log_failure() -> None:
    """A warning whose arguments and traceback both hold the secret and the number."""
    try:
        raise RuntimeError(f"2Chat said no to {NUMBER} with {SECRET}")
    except RuntimeError:
        logging.getLogger("bot.test").exception("send to %s with %s failed", NUMBER, SECRET)


def test_json_lines_are_scrubbed_like_text(stream: io.StringIO) -> None:
    configure(stream, [SECRET], "json")
    log_failure()
    logging.getLogger("bot.test").info("second line")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines  # one object per line, the traceback inside it
    entry = json.loads(lines[0])
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "bot.test"
    assert entry["time"].endswith("+00:00")
    assert entry["message"] == f"send to {MASKED} with [redacted] failed"
    assert "Traceback" in entry["exc_info"]
    assert f"2Chat said no to {MASKED} with [redacted]" in entry["exc_info"]
    assert SECRET not in stream.getvalue() and NUMBER not in stream.getvalue()
    assert json.loads(lines[1])["message"] == "second line"
    assert "exc_info" not in json.loads(lines[1])


def test_text_format_is_the_default_and_scrubbed_too(stream: io.StringIO) -> None:
    configure(stream, [SECRET])
    log_failure()

    output = stream.getvalue()
    assert f"ERROR bot.test: send to {MASKED} with [redacted] failed" in output
    assert f"RuntimeError: 2Chat said no to {MASKED} with [redacted]" in output
    assert SECRET not in output and NUMBER not in output


def test_only_whole_e164_numbers_are_masked(stream: io.StringIO) -> None:
    configure(stream, [], "json")
    logging.getLogger("bot.test").info(
        "send 12 to %s as 447700900123 at 1732700000 (%s)", "+13065550142", MASKED
    )
    message = json.loads(stream.getvalue())["message"]
    # Bare digit runs are ids and timestamps; an already masked number stays as it is.
    assert message == f"send 12 to +1•••••0142 as 447700900123 at 1732700000 ({MASKED})"


def test_a_malformed_log_call_does_not_raise_and_is_still_scrubbed(stream: io.StringIO) -> None:
    configure(stream, [SECRET], "json")
    logging.getLogger("bot.test").info("two placeholders %s %s", SECRET)
    message = json.loads(stream.getvalue())["message"]
    assert message.startswith("two placeholders %s %s (unformatted arguments")
    assert SECRET not in message


def test_log_format_is_checked_with_the_other_settings() -> None:
    assert load_settings(GOOD).log_format == "text"
    assert load_settings({**GOOD, "LOG_FORMAT": " JSON "}).log_format == "json"
    with pytest.raises(SettingsError) as caught:
        load_settings({**GOOD, "LOG_FORMAT": "yaml", "LOG_LEVEL": "loud"})
    assert caught.value.problems == [
        "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR",
        "LOG_FORMAT must be one of text, json",
    ]


async def test_slack_sdk_builds_no_debug_lines_for_the_web_api_client(
    stream: io.StringIO,
) -> None:
    """slack-sdk formats a debug line of every request, the whole message included,
    whenever its client's logger has no level of its own (then drops it): under load that
    was a few per cent of the CPU per send. The app's client logs through a logger that
    configure_logging keeps at INFO or above, even when LOG_LEVEL is DEBUG."""
    configure_logging("DEBUG", [])
    async with aiohttp.ClientSession() as session:
        client = slack_client(load_settings(GOOD), session, lambda method, error: None)
    assert logging.DEBUG < client.logger.level <= logging.INFO
