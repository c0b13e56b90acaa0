"""The policy file's data model: immutable, already validated and normalised.

``bot.config.load_policy`` builds a ``Policy`` from YAML; everything else only reads it.
All numbers here are E.164 strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

WILDCARD = "*"


@dataclass(frozen=True)
class Recipient:
    """One phone that a send reaches; ``name`` is the contact name when it has one."""

    number: str
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.number


@dataclass(frozen=True)
class Defaults:
    region: str = "GB"
    from_name: str = "main"
    max_segments: int = 3
    mask_numbers: bool = False


@dataclass(frozen=True)
class SenderRule:
    """One ``senders`` entry: these users may send to ``to`` from ``from_names``.

    ``to`` holds contact names, group names, E.164 numbers, E.164 prefixes ending in "*", or
    "*" alone. ``from_names`` is None when every from-number is allowed.
    """

    users: tuple[str, ...]
    to: tuple[str, ...]
    from_names: tuple[str, ...] | None = None
    approval_required: bool = False


@dataclass(frozen=True)
class Approvals:
    approvers: frozenset[str] = frozenset()
    channel: str | None = None
    expire_after: timedelta = timedelta(minutes=30)
    allow_self_approval: bool = False


@dataclass(frozen=True)
class AutoPage:
    match: re.Pattern[str]
    dedupe_window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class ChannelRule:
    page: str | None = None
    auto_page: AutoPage | None = None


@dataclass(frozen=True)
class Limits:
    per_sender_per_hour: int | None = None
    per_recipient_per_hour: int | None = None
    requests_per_minute: int | None = None


# Replies that mean "stop texting me" / "you may text me again" (carriers' standard words).
STOP_WORDS: frozenset[str] = frozenset({"stop", "stopall", "unsubscribe"})
START_WORDS: frozenset[str] = frozenset({"start", "unstop"})


def reply_keyword(text: str) -> str:
    """What a reply says as a keyword: case, spacing and surrounding punctuation ignored."""
    return " ".join(text.split()).strip(" .!?,;:'\"()[]").lower()


@dataclass(frozen=True)
class Replies:
    """The optional ``replies`` section: relaying SMS replies back into Slack.

    2Chat has no SMS webhook, so replies are polled; ``poll_interval`` None (the default)
    leaves the poller off, because every poll costs 2Chat credits.
    """

    poll_interval: timedelta | None = None
    window: timedelta = timedelta(hours=24)
    ack_words: tuple[str, ...] = ("ack", "ok")
    unknown_numbers_channel: str | None = None


@dataclass(frozen=True)
class Policy:
    """The whole policy file. ``groups`` maps a group name to its resolved members."""

    defaults: Defaults
    from_numbers: dict[str, str]
    contacts: dict[str, str]
    groups: dict[str, tuple[Recipient, ...]]
    senders: tuple[SenderRule, ...]
    approvals: Approvals = field(default_factory=Approvals)
    channels: dict[str, ChannelRule] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    replies: Replies = field(default_factory=Replies)
    source: str = "<memory>"
    # Likely mistakes found while loading ("file:line: key: why"): the policy still works,
    # so they are for check-config and the startup log to show, not reasons to refuse it.
    warnings: tuple[str, ...] = ()

    def rule_for(self, user_id: str) -> SenderRule | None:
        """The senders entry of a Slack user, or None: a user in no entry may not send."""
        for rule in self.senders:
            if user_id in rule.users:
                return rule
        return None

    def contact_name(self, number: str) -> str | None:
        """The contact name of an E.164 number, if it has one."""
        for name, contact_number in self.contacts.items():
            if contact_number == number:
                return name
        return None
