"""Runtime settings from the environment (SPEC §2): secrets never come from the YAML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.errors import SettingsError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_TWOCHAT_API_URL = "https://api.p.2chat.io"
DEFAULT_DATABASE_URL = "sqlite:///sms-bridge.db"


@dataclass(frozen=True)
class Settings:
    """Validated settings. Secret fields are excluded from repr so they never reach a log."""

    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str | None = field(repr=False)
    slack_app_token: str | None = field(repr=False)
    twochat_api_key: str = field(repr=False)
    config_path: str = "config/bridge.yaml"
    database_url: str = DEFAULT_DATABASE_URL
    port: int = 3000
    slack_api_url: str = DEFAULT_SLACK_API_URL
    twochat_api_url: str = DEFAULT_TWOCHAT_API_URL
    twochat_connect_timeout: float = 5.0
    twochat_read_timeout: float = 15.0
    shutdown_grace_seconds: float = 25.0
    sweep_interval_seconds: float = 10.0
    log_level: str = "INFO"

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so logging can redact them wherever they might appear."""
        values = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.twochat_api_key,
        )
        return tuple(value for value in values if value)


def _url_problem(name: str, value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{name} must be an http(s) URL"
    return None


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and check every setting, raising one ``SettingsError`` that names all problems.

    Messages name the variable and what is wrong with it, never the value of a secret.
    """
    problems: list[str] = []

    def text(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    def token(name: str, prefix: str, required: bool) -> str | None:
        value = text(name)
        if value is None:
            if required:
                problems.append(f"{name} is not set")
            return None
        if not value.startswith(prefix):
            problems.append(f"{name} must start with {prefix!r}")
        return value

    def number(name: str, default: float, kind: type[int] | type[float]) -> float:
        raw = text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            problems.append(f"{name} must be a {'whole ' if kind is int else ''}number")
            return default
        if value <= 0:
            problems.append(f"{name} must be greater than zero")
        return value

    app_token = token("SLACK_APP_TOKEN", "xapp-", required=False)
    bot_token = token("SLACK_BOT_TOKEN", "xoxb-", required=True)
    signing_secret = text("SLACK_SIGNING_SECRET")
    if app_token is None and signing_secret is None:
        problems.append("SLACK_SIGNING_SECRET is not set (required in HTTP mode)")
    api_key = text("TWOCHAT_API_KEY")
    if api_key is None:
        problems.append("TWOCHAT_API_KEY is not set")

    database_url = text("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", database_url):
        problems.append("DATABASE_URL must look like sqlite:///path.db or postgres://user@host/db")

    port = int(number("PORT", 3000, int))
    if port > 65535:
        problems.append("PORT must be at most 65535")

    slack_api_url = text("SLACK_API_URL") or DEFAULT_SLACK_API_URL
    twochat_api_url = text("TWOCHAT_API_URL") or DEFAULT_TWOCHAT_API_URL
    for name, value in (("SLACK_API_URL", slack_api_url), ("TWOCHAT_API_URL", twochat_api_url)):
        problem = _url_problem(name, value)
        if problem:
            problems.append(problem)
    if not slack_api_url.endswith("/"):
        slack_api_url += "/"

    log_level = (text("LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR")

    settings = Settings(
        slack_bot_token=bot_token or "",
        slack_signing_secret=signing_secret,
        slack_app_token=app_token,
        twochat_api_key=api_key or "",
        config_path=text("SMS_BRIDGE_CONFIG") or "config/bridge.yaml",
        database_url=database_url,
        port=port,
        slack_api_url=slack_api_url,
        twochat_api_url=twochat_api_url,
        twochat_connect_timeout=number("TWOCHAT_CONNECT_TIMEOUT", 5.0, float),
        twochat_read_timeout=number("TWOCHAT_READ_TIMEOUT", 15.0, float),
        shutdown_grace_seconds=number("SHUTDOWN_GRACE_SECONDS", 25.0, float),
        sweep_interval_seconds=number("SWEEP_INTERVAL_SECONDS", 10.0, float),
        log_level=log_level,
    )
    if problems:
        raise SettingsError(problems)
    return settings
