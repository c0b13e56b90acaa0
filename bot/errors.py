"""The one error hierarchy of the bridge.

Every error a user can see is a ``BridgeError`` whose ``user_message`` is safe to post in
Slack: it never carries a secret. ``bot.messages.describe_error`` is the one place that turns
any exception into the text a user reads.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every expected failure; ``str(error)`` is the user-facing message."""

    @property
    def user_message(self) -> str:
        return str(self)


class SettingsError(BridgeError):
    """Environment settings are missing or malformed; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "sms-bridge cannot start:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


class ConfigError(BridgeError):
    """The policy file is invalid; ``problems`` are located messages ("file:line: key: why")."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class InvalidNumber(BridgeError):
    """A phone number that cannot be parsed or is not a valid number."""


class UnknownRecipient(BridgeError):
    """A recipient name that is neither a contact, a group nor a phone number."""


class TwoChatError(BridgeError):
    """2Chat refused or failed a call. ``temporary`` errors may succeed if retried;
    ``outcome_unknown`` ones may have been sent, so they are never retried automatically."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        temporary: bool = False,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.temporary = temporary
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after  # seconds, when 2Chat said so
        super().__init__(message)

    @property
    def rate_limited(self) -> bool:
        """2Chat answered 429: it did nothing, and the call may go once there is budget."""
        return self.status == 429


class StoreError(BridgeError):
    """The database cannot be opened, reached or migrated; the message never holds a password."""
