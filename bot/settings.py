"""Runtime settings from the environment: secrets never come from the YAML policy file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.errors import SettingsError
from bot.logs import LOG_FORMATS

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
    # When set, /metrics and /readyz are served on this port only, not next to /slack/events.
    metrics_port: int | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    twochat_api_url: str = DEFAULT_TWOCHAT_API_URL
    twochat_connect_timeout: float = 5.0
    twochat_read_timeout: float = 15.0
    shutdown_grace_seconds: float = 25.0
    sweep_interval_seconds: float = 10.0
    log_level: str = "INFO"
    log_format: str = "text"
    twochat_dry_run: bool = False
    # How long Slack user group members and profile phones are reused before asking again.
    slack_directory_ttl_seconds: float = 60.0
    # Slack profile lookups a minute (users.profile.get is Tier 4: 100 a minute and more).
    slack_profile_lookups_per_minute: float = 100.0

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


DEFAULT_CONFIG_PATH = "config/bridge.yaml"  # the policy file when SMS_BRIDGE_CONFIG is not set

# The values config/.env.example ships with: left unchanged they mean "not set yet".
PLACEHOLDERS = frozenset(
    {"xoxb-your-bot-token", "your-signing-secret", "xapp-your-app-token", "your-2chat-api-key"}
)

FLAG_VALUES = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


class _Environment:
    """Reads variables and collects every problem, so one error can name them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        if value in PLACEHOLDERS:
            self.problems.append(f"{name} still has the example value from config/.env.example")
            return None
        return value or None

    def missing(self, name: str, why: str = "") -> None:
        """Note that a required setting has no value, unless a problem already names it (a
        value left as in config/.env.example is reported once, as that)."""
        if not any(problem.startswith(f"{name} ") for problem in self.problems):
            self.problems.append(f"{name} is not set{why}")

    def token(self, name: str, prefix: str, required: bool) -> str | None:
        value = self.text(name)
        if value is None:
            if required:
                self.missing(name)
            return None
        if not value.startswith(prefix):
            self.problems.append(f"{name} must start with {prefix!r}")
        return value

    def number(self, name: str, default: float, kind: type[int] | type[float]) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            self.problems.append(f"{name} must be a {'whole ' if kind is int else ''}number")
            return default
        if value <= 0:
            self.problems.append(f"{name} must be greater than zero")
        return value

    def url(self, name: str, default: str) -> str:
        value = self.text(name) or default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problems.append(f"{name} must be an http(s) URL")
        return value

    def flag(self, name: str, default: bool) -> bool:
        """A yes/no setting: true/false, yes/no, on/off or 1/0, in any case."""
        raw = self.text(name)
        if raw is None:
            return default
        value = FLAG_VALUES.get(raw.casefold())
        if value is None:
            self.problems.append(f"{name} must be true or false (or yes/no, on/off, 1/0)")
            return default
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """One of ``allowed``, matched without regard to case and spelled as listed."""
        value = (self.text(name) or default).casefold()
        for option in allowed:
            if option.casefold() == value:
                return option
        self.problems.append(f"{name} must be one of {', '.join(allowed)}")
        return default


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and check every setting, raising one ``SettingsError`` that names all problems.

    Messages name the variable and what is wrong with it, never the value of a secret.
    """
    env = _Environment(environ)
    app_token = env.token("SLACK_APP_TOKEN", "xapp-", required=False)
    bot_token = env.token("SLACK_BOT_TOKEN", "xoxb-", required=True)
    signing_secret = env.text("SLACK_SIGNING_SECRET")
    if app_token is None and signing_secret is None:
        env.missing("SLACK_SIGNING_SECRET", " (required in HTTP mode)")
    api_key = env.text("TWOCHAT_API_KEY")
    if api_key is None:
        env.missing("TWOCHAT_API_KEY")

    database_url = env.text("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", database_url):
        env.problems.append(
            "DATABASE_URL must look like sqlite:///path.db or postgres://user@host/db"
        )
    port = int(env.number("PORT", 3000, int))
    if port > 65535:
        env.problems.append("PORT must be at most 65535")
    metrics_port = int(env.number("METRICS_PORT", 0, int)) or None
    if metrics_port is not None and metrics_port > 65535:
        env.problems.append("METRICS_PORT must be at most 65535")
    if metrics_port == port:
        env.problems.append("METRICS_PORT must differ from PORT")
    slack_api_url = env.url("SLACK_API_URL", DEFAULT_SLACK_API_URL)
    settings = Settings(
        slack_bot_token=bot_token or "",
        slack_signing_secret=signing_secret,
        slack_app_token=app_token,
        twochat_api_key=api_key or "",
        config_path=env.text("SMS_BRIDGE_CONFIG") or DEFAULT_CONFIG_PATH,
        database_url=database_url,
        port=port,
        metrics_port=metrics_port,
        slack_api_url=slack_api_url if slack_api_url.endswith("/") else slack_api_url + "/",
        twochat_api_url=env.url("TWOCHAT_API_URL", DEFAULT_TWOCHAT_API_URL),
        twochat_connect_timeout=env.number("TWOCHAT_CONNECT_TIMEOUT", 5.0, float),
        twochat_read_timeout=env.number("TWOCHAT_READ_TIMEOUT", 15.0, float),
        shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 25.0, float),
        sweep_interval_seconds=env.number("SWEEP_INTERVAL_SECONDS", 10.0, float),
        log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        log_format=env.choice("LOG_FORMAT", "text", LOG_FORMATS),
        twochat_dry_run=env.flag("TWOCHAT_DRY_RUN", False),
        slack_directory_ttl_seconds=env.number("SLACK_DIRECTORY_TTL_SECONDS", 60.0, float),
        slack_profile_lookups_per_minute=env.number(
            "SLACK_PROFILE_LOOKUPS_PER_MINUTE", 100.0, float
        ),
    )
    if 0 < settings.slack_profile_lookups_per_minute < 2:
        env.problems.append(
            "SLACK_PROFILE_LOOKUPS_PER_MINUTE must be at least 2 (a burst and a pace)"
        )
    if env.problems:
        raise SettingsError(env.problems)
    return settings
