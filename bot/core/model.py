"""The policy file's data model: immutable, already validated and normalised.

``bot.config.load_policy`` builds a ``Policy`` from YAML; everything else only reads it.
All numbers here are E.164 strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.escalation import Escalation

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
    # Off by default: a Slack profile phone is the person's to show colleagues, not an
    # agreement to be texted; when on, it numbers linked people the file gives none.
    slack_profile_numbers: bool = False


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
    escalation: str | None = None  # a key of ``Policy.escalations``: pages here escalate


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


# The share of 2Chat's per-minute budget reply polling may use: polls also wait while any
# send does, and stopping at half the minute leaves a page that comes next the other half.
POLL_SHARE = 0.5
# The share polling still gets while sends wait: a page that takes an hour at the account's
# cap must not leave its acks and STOP replies unread for that hour.
POLL_FLOOR_SHARE = 0.1


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
    # Used instead of ``poll_interval`` while an escalating page awaits its ack.
    page_poll_interval: timedelta | None = None


@dataclass(frozen=True)
class Retention:
    """The optional ``retention`` section: finished requests, their sends and replies older
    than ``keep`` are purged, so the database (and the audit export) covers that window."""

    keep: timedelta = timedelta(days=90)


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
    retention: Retention = field(default_factory=Retention)
    escalations: dict[str, Escalation] = field(default_factory=dict)
    # Contact name → its Slack user id (``slack:``); such a contact may have no number.
    contact_slack: dict[str, str] = field(default_factory=dict)
    # Group name → Slack user group id (``slack_group:``): its members are read from Slack
    # when a text is sent, so ``groups`` holds no members for it.
    slack_groups: dict[str, str] = field(default_factory=dict)
    source: str = "<memory>"
    # Likely mistakes found while loading ("file:line: key: why"): the policy still works,
    # so they are for check-config and the startup log to show, not reasons to refuse it.
    warnings: tuple[str, ...] = ()

    def contact_of_user(self, user_id: str) -> str | None:
        """The contact linked to a Slack user, if any."""
        for name, linked in self.contact_slack.items():
            if linked == user_id:
                return name
        return None

    def user_groups(self) -> frozenset[str]:
        """Every Slack user group the policy refers to: rosters, senders and approvers."""
        listed = [*self.slack_groups.values(), *self.approvals.approvers]
        listed += [user for rule in self.senders for user in rule.users]
        return frozenset(entry for entry in listed if entry.startswith("S"))

    def contact_name(self, number: str) -> str | None:
        """The contact name of an E.164 number, if it has one."""
        for name, contact_number in self.contacts.items():
            if contact_number == number:
                return name
        return None
