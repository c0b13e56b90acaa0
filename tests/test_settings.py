import pytest

from bot.errors import SettingsError
from bot.settings import load_settings

GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1-secret-bot",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "TWOCHAT_API_KEY": "UAK-secret-key",
}


def test_documented_defaults() -> None:
    settings = load_settings(GOOD)
    assert settings.port == 3000
    assert settings.config_path == "config/bridge.yaml"
    assert settings.database_url == "sqlite:///sms-bridge.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.twochat_api_url == "https://api.p.2chat.io"
    assert not settings.socket_mode


def test_every_missing_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({})
    message = str(caught.value)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TWOCHAT_API_KEY"):
        assert name in message
    assert len(caught.value.problems) == 3


def test_socket_mode_needs_no_signing_secret() -> None:
    env = {**GOOD, "SLACK_APP_TOKEN": "xapp-1-A1-secret"}
    del env["SLACK_SIGNING_SECRET"]
    assert load_settings(env).socket_mode


def test_malformed_values_are_reported_without_echoing_secrets() -> None:
    env = {
        **GOOD,
        "SLACK_BOT_TOKEN": "xoxp-user-token-SECRET",
        "SLACK_APP_TOKEN": "bad-app-token-SECRET",
        "PORT": "eighty",
        "DATABASE_URL": "mysql://x",
        "SLACK_API_URL": "slack.com",
        "TWOCHAT_READ_TIMEOUT": "-1",
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "SECRET" not in message
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "PORT",
        "DATABASE_URL",
        "SLACK_API_URL",
        "TWOCHAT_READ_TIMEOUT",
    ):
        assert name in message
    assert len(caught.value.problems) == 6


def test_secrets_stay_out_of_repr() -> None:
    settings = load_settings(GOOD)
    assert "secret" not in repr(settings).lower()
    assert set(settings.secrets) == set(GOOD.values())


def test_api_url_gets_trailing_slash_and_heroku_postgres_is_accepted() -> None:
    settings = load_settings(
        {**GOOD, "SLACK_API_URL": "http://127.0.0.1:9/api", "DATABASE_URL": "postgres://u@h/db"}
    )
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert settings.database_url == "postgres://u@h/db"
