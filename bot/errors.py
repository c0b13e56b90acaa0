"""Every public exception of the bridge, in one hierarchy.

Every error a user can see is a ``BridgeError`` whose ``user_message`` is safe to post in
Slack: it never carries a secret. ``describe_error`` in ``bot.slack.render.refusals`` is the
one place that turns any exception into the text a user reads. The tree, and who raises each::

    Exception
    ├── BridgeError            base of every expected failure; str() is the user's message
    │   ├── SettingsError      environment settings (bot.settings)
    │   ├── ConfigError        the policy file, with file:line problems (bot.config)
    │   ├── InvalidNumber      a phone number that does not parse (bot.core.phone)
    │   ├── UnknownRecipient   a name that is no contact, group or number (bot.core)
    │   │   └── RosterUnread   nobody texted because Slack did not give a roster (bot.core)
    │   ├── TwoChatError       2Chat refused or failed a call (bot.sms)
    │   ├── StoreError         the database cannot be opened, reached or migrated (bot.store)
    │   │   └── CommitUnknown  the connection failed while committing (bot.store.postgres)
    │   ├── AllOptedOut        every recipient has opted out, nothing recorded (bot.store)
    │   ├── RateLimited        a request would exceed a rate limit (bot.store.limits)
    │   ├── BadPayload         a Slack payload without a field we need (bot.slack)
    │   │   └── GarbledField   a form field in the wrong shape, shown under it (bot.slack)
    │   ├── NotASender         a user who may not send, so no form (bot.slack)
    │   └── NotPosted          Slack took a reply by none of its routes (bot.sending)
    ├── SendTaken              another worker claimed a send first (bot.sending)
    └── Duplicate              a claim of a request being recorded was taken already
                               (bot.store): everything rolls back

``SendTaken`` and ``Duplicate`` steer control flow and never reach a user, so they are not
``BridgeError``s. This module imports nothing from ``bot``, so every layer can raise these
without an import cycle. Exceptions private to one module (a leading underscore) stay there.
``SLACK_TOKEN_ERRORS`` is here too: Slack's error codes for a bad bot token, which readiness
(below Slack in the layers) and Slack's own modules both recognise.
"""

from __future__ import annotations

from datetime import datetime

SLACK_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"}
)


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


class RosterUnread(UnknownRecipient):
    """Nobody on a roster can be texted because Slack did not give its members or their
    profiles: a lookup to ask again, not a roster to fix."""


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


class CommitUnknown(StoreError):
    """The connection failed while committing: the server may or may not have committed."""


class AllOptedOut(BridgeError):
    """Every recipient of a request has opted out, so nothing was recorded."""


class RateLimited(BridgeError):
    """A request would exceed a rate limit; ``retry_at`` is when it would fit again."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        self.retry_at = retry_at
        super().__init__(message)


class BadPayload(BridgeError):
    """A Slack payload without a field we need, or with the wrong type."""


class GarbledField(BadPayload):
    """A form field that arrived in the wrong shape; a form shows this under that field."""

    def __init__(self, block_id: str) -> None:
        super().__init__(f"the form's {block_id} field arrived garbled; please try again")
        self.block_id = block_id


class NotASender(BridgeError):
    """The user may not send at all, so there is no form to show them."""


class SendTaken(Exception):
    """Another worker claimed this send first; it sends and reports it."""


class Duplicate(Exception):
    """A claim of ``record_request`` was taken already: roll everything back."""


class NotPosted(BridgeError):
    """Slack took a reply SMS by none of its routes (its thread, the requester): it stays
    pending and is posted at a later poll."""
