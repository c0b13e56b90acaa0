"""Logging set-up with a last line of defence: every record is scrubbed before any formatter
sees it, so text and JSON output carry no known secret and no phone number in full."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from bot.core.phone import mask

REDACTED = "[redacted]"
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# An E.164 number standing alone. Call sites already mask the numbers they log; this catches
# the ones that slip through (an exception message, a library's log line). Bare digit runs
# are left alone: they are far more often ids and timestamps than phone numbers.
_E164 = re.compile(r"(?<![\w+])\+[1-9][0-9]{6,14}(?![0-9])")

# Fields a JSON record carries besides its message: from ``log_context`` (the Slack request
# being handled, inherited by the tasks it starts) or from a call's ``extra=``.
FIELDS = (
    "request_id",
    "kind",
    "slack_user",
    "channel",
    "event_type",
    "send_id",
    "twochat_status",
    "latency_ms",
)
_context: ContextVar[Mapping[str, object] | None] = ContextVar("log_context", default=None)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every record logged inside (and in tasks started inside) carries ``fields``."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class ScrubbingFilter(logging.Filter):
    """Redacts known secret values and masks E.164 numbers in a record's message,
    exception text and stack text. It runs on the handler, before formatting, so every
    formatter gets the same scrubbed record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if len(secret) >= 4)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _E164.sub(lambda match: mask(match.group()), text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed log call must not raise where it is made
            message = f"{record.msg} (unformatted arguments: {record.args!r})"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.scrub(message), None
        fields = {**(_context.get() or {})}
        fields.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        record.fields = {
            name: self.scrub(value) if isinstance(value, str) else value
            for name, value in fields.items()
        }
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors that index fields instead of text.

    ASCII-only output (masked digits become ``\\u2022``) stays valid JSON on any stream
    encoding a container happens to have.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry)


def startup_failure(message: str, environ: Mapping[str, str]) -> None:
    """A refusal to start, on stderr before logging is set up: one JSON record when
    LOG_FORMAT asks for JSON (whatever else is wrong with the settings), else the text."""
    if environ.get("LOG_FORMAT", "").strip().casefold() != "json":
        print(message, file=sys.stderr)
        return
    record = logging.LogRecord("bot", logging.ERROR, __file__, 0, message, None, None)
    print(JsonFormatter().format(record), file=sys.stderr)


# slack-sdk's logger, kept at INFO or above by ``configure_logging``. Give it to slack-sdk's
# clients: they build their debug lines, the whole request's blocks included, whenever
# their logger's own level is unset, only for the records to be dropped afterwards.
SLACK_SDK_LOGGER = logging.getLogger("slack_sdk")


def configure_logging(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    """Send every log record to stderr, scrubbed, as text lines or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(ScrubbingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party debug output can include request headers; keep it out unless asked for.
    for noisy in (SLACK_SDK_LOGGER.name, "slack_bolt", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
