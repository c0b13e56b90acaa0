"""Logging set-up with a last line of defence: known secrets are redacted from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

REDACTED = "[redacted]"


class SecretRedactingFilter(logging.Filter):
    """Replaces any known secret value in a formatted record with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if len(secret) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        exc_text = record.exc_text or ""
        if any(secret in message or secret in exc_text for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, REDACTED)
                exc_text = exc_text.replace(secret, REDACTED)
            record.msg, record.args, record.exc_text = message, None, exc_text or None
        return True


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretRedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party debug output can include request headers; keep it out unless asked for.
    for noisy in ("slack_sdk", "slack_bolt", "httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
