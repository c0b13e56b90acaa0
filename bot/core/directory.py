"""What Slack said about people at one moment: user group members and profile phones.

Looking these up is I/O, so the Slack side does it first and passes the result in as a
``Directory`` value; the policy functions stay pure and see one consistent snapshot for a
whole decision (the sender's groups and the recipients' groups read at the same time).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.model import Policy

# Whether someone is in a list of users and user groups: True, False, or None when a user
# group of the list could not be read from Slack (so nobody can say).
Membership = bool | None

# A Slack user id as Slack writes it (W… for Enterprise Grid users).
USER_ID = re.compile(r"[UW][A-Z0-9]+")
# How a recipient that came from a Slack mention is written: "<@U…>" and "<!subteam^S…>".
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
GROUP_MENTION = re.compile(r"<!subteam\^(S[A-Z0-9]+)>")
USER_GROUP_PREFIX = "S"


def user_mention(user_id: str) -> str:
    """A Slack user as a recipient and in messages (Slack shows it as their name)."""
    return f"<@{user_id}>"


@dataclass(frozen=True)
class Directory:
    """Slack user group id → its member user ids, and user id → profile phone (E.164).

    A group missing from ``members`` could not be read; ``unread`` says why (Slack failed,
    was rate-limited, or timed out), and a group in neither was never asked for. That is
    not the same as a group with no members, and refusals say which. ``phones_unread``
    likewise holds the users whose profile could not be read, so they are reported as
    "lookup failed", never as having no number.
    """

    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    phones: Mapping[str, str] = field(default_factory=dict)
    unread: Mapping[str, str] = field(default_factory=dict)
    phones_unread: Mapping[str, str] = field(default_factory=dict)

    def in_group(self, user_id: str, group_id: str) -> Membership:
        """Whether the user is in the group; None when its members could not be read."""
        members = self.members.get(group_id)
        return None if members is None else user_id in members

    def matches(self, user_id: str, listed: Sequence[str] | frozenset[str]) -> Membership:
        """Whether ``user_id`` is one of ``listed``, directly or through a user group; None
        when they are not listed directly and a listed group could not be read."""
        if user_id in listed:
            return True
        return any_of(self.in_group(user_id, entry) for entry in listed if is_user_group(entry))

    def unread_among(self, listed: Iterable[str]) -> dict[str, str]:
        """The listed user groups that could not be read, each with why."""
        return {
            entry: self.unread.get(entry, "not read")
            for entry in listed
            if is_user_group(entry) and entry not in self.members
        }


EMPTY_DIRECTORY = Directory()


class DirectorySource(Protocol):
    """Builds the directory a policy needs: policy → snapshot. The send path takes one of
    these so it can re-authorize at send time with membership as it is then; ``patient``
    work (no Slack request waits for it) lets slow or rate-limited lookups finish."""

    def __call__(self, policy: Policy, *, patient: bool = False) -> Awaitable[Directory]: ...


async def no_directory(policy: Policy, *, patient: bool = False) -> Directory:
    """The source for a policy that names no Slack users or groups (and for tests)."""
    return EMPTY_DIRECTORY


def any_of(answers: Iterable[Membership]) -> Membership:
    """True when any answer is True; else None when any is unknown; else False."""
    unknown = False
    for answer in answers:
        if answer:
            return True
        unknown = unknown or answer is None
    return None if unknown else False


def is_user_group(entry: str) -> bool:
    """Whether a ``users``/``approvers`` entry is a Slack user group id ("S…")."""
    return entry.startswith(USER_GROUP_PREFIX)
