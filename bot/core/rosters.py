"""Rosters: the one resolution of a recipient as named (a contact, a group, a group kept in
Slack, a Slack mention, a number) into the people it texts.

Every path that texts people resolves through ``resolve``: ``/sms``, the compose form,
``@bot page``, the page shortcut, auto-pages, every ladder tier and repeat, and the re-read
at send time. Slack user groups and profile phones come in a ``Directory`` snapshot the
caller looked up, so this stays pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.core.directory import GROUP_MENTION, USER_MENTION, Directory, user_mention
from bot.core.model import Policy, Recipient
from bot.core.phone import parse_number
from bot.errors import InvalidNumber, RosterUnread, UnknownRecipient

# Slack's mentions of everyone in a channel, as the bridge reads them ("<!here>" is "@here").
_WHOLE_CHANNEL = frozenset({"@here", "@channel", "@everyone"})


def _plain_mention(target: str) -> str:
    """Why "@name", "#channel" or "@here" is no recipient: a name Slack sent as plain text
    (its command was not set to escape mentions, or the name was typed without picking the
    person) could be anyone's, and a channel has no phone."""
    if target.startswith("#") or target in _WHOLE_CHANNEL:
        return f"`{target}` is a channel, not a person; the bridge texts people"
    return (
        f"`{target}` arrived as plain text, not as a Slack mention, so the bridge cannot "
        "tell who it is: pick the person in Slack (the @ menu, or the form's people "
        "picker), or use a contact name"
    )


@dataclass(frozen=True)
class Resolved:
    """A target's recipients, and the Slack users it names who have no number (shown as
    not reachable, so a roster member without a number never silently drops out)."""

    recipients: tuple[Recipient, ...]
    unreachable: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()  # members whose Slack profile could not be read
    # Why targets of a page that reaches others were not resolved (a user group Slack did
    # not give): nobody on them is texted, and the page's thread says why.
    skipped: tuple[str, ...] = ()


def resolve(policy: Policy, target: str, directory: Directory) -> Resolved:
    """A contact, group, Slack mention or number → its recipients: the one roster
    resolution of every path that texts people (sends, pages, auto-pages, every ladder
    tier and repeat, and the re-reads at send time).

    Raises InvalidNumber / UnknownRecipient. Slack user groups and profile phones are read
    from ``directory``, which the caller looked up beforehand.
    """
    if group_mention := GROUP_MENTION.fullmatch(target):
        target = _group_of(policy, group_mention.group(1))
    if target in policy.slack_groups:
        return _slack_group(policy, target, directory)
    if target in policy.groups:
        return Resolved(policy.groups[target])
    if user := USER_MENTION.fullmatch(target):
        return Resolved((_mentioned_user(policy, user.group(1), directory),))
    if target in policy.contacts or target in policy.contact_slack:
        return Resolved((_contact(policy, target, directory),))
    if target.startswith(("@", "#")):
        raise UnknownRecipient(_plain_mention(target))
    if not any(char.isdigit() for char in target):
        raise UnknownRecipient(f"'{target}' is not a contact, a group or a phone number")
    number = parse_number(target, policy.defaults.region)
    return Resolved((Recipient(number, policy.contact_name(number)),))


def resolve_target(policy: Policy, target: str, directory: Directory) -> tuple[Recipient, ...]:
    """A target's recipients (see ``resolve``)."""
    return resolve(policy, target, directory).recipients


def resolve_all(policy: Policy, targets: Sequence[str], directory: Directory) -> Resolved:
    """Several targets' distinct recipients and unreachable people, for a page that names
    no person to refuse to (an auto-page, a ladder's tier): a target that cannot be
    resolved is skipped (``Resolved.skipped`` says why), and UnknownRecipient names why
    when none could be: RosterUnread when Slack not giving a roster is among the causes."""
    problems: list[InvalidNumber | UnknownRecipient] = []
    merged = merge(policy, targets, directory, problems)
    reasons = tuple(str(problem) for problem in problems)
    if not merged.recipients:
        unread = any(isinstance(problem, RosterUnread) for problem in problems)
        nobody = RosterUnread if unread else UnknownRecipient
        raise nobody("; ".join(reasons) or "nobody to text")
    return replace(merged, skipped=reasons)


def merge(
    policy: Policy,
    targets: Sequence[str],
    directory: Directory,
    problems: list[InvalidNumber | UnknownRecipient],
) -> Resolved:
    """The targets' distinct recipients, unreachable and unread people; a target that
    cannot be resolved adds why to ``problems``."""
    recipients: dict[str, Recipient] = {}
    unreachable: dict[str, None] = {}
    unread: dict[str, None] = {}
    for target in targets:
        try:
            resolved = resolve(policy, target, directory)
        except (InvalidNumber, UnknownRecipient) as exc:
            problems.append(exc)
            continue
        unreachable.update(dict.fromkeys(resolved.unreachable))
        unread.update(dict.fromkeys(resolved.unread))
        for recipient in resolved.recipients:
            recipients.setdefault(recipient.number, recipient)
    return Resolved(tuple(recipients.values()), tuple(unreachable), tuple(unread))


def reads_slack(policy: Policy, targets: Sequence[str]) -> bool:
    """Whether resolving ``targets`` reads Slack's directory: a user group kept in Slack,
    or a linked person whose number is their Slack profile's. Work whose rosters are all
    in the file does not ask Slack, so Slack being slow or down never delays it."""
    return any(_reads_slack(policy, target) for target in targets)


def _reads_slack(policy: Policy, target: str) -> bool:
    if GROUP_MENTION.fullmatch(target) or target in policy.slack_groups:
        return True
    if user := USER_MENTION.fullmatch(target):
        target = policy.contact_of_user(user.group(1)) or ""
    profiled = target in policy.contact_slack and target not in policy.contacts
    return profiled and policy.defaults.slack_profile_numbers


def names_recipient(policy: Policy, target: str) -> bool:
    """Whether ``target`` names a recipient the policy knows (a group, a Slack user group,
    a contact, a mention of a linked contact or known user group) or is a phone number.
    Decided without Slack: a roster's members are read only once the send is decided."""
    if target in policy.groups or target in policy.slack_groups:
        return True
    if target in policy.contacts or target in policy.contact_slack:
        return True
    if user := USER_MENTION.fullmatch(target):
        return policy.contact_of_user(user.group(1)) is not None
    if group := GROUP_MENTION.fullmatch(target):
        return group.group(1) in policy.slack_groups.values()
    try:
        parse_number(target, policy.defaults.region)
    except InvalidNumber:
        return False
    return any(char.isdigit() for char in target)


def _group_of(policy: Policy, group_id: str) -> str:
    """The policy's group for a mentioned Slack user group."""
    for name, linked in policy.slack_groups.items():
        if linked == group_id:
            return name
    raise UnknownRecipient(f"{group_mention_text(group_id)} is not a group in the policy")


def group_mention_text(group_id: str) -> str:
    return f"<!subteam^{group_id}>"


def _user_recipient(policy: Policy, user_id: str, directory: Directory) -> Recipient | None:
    """A Slack user's number: their contact's in the file, else (when the policy allows
    it) their Slack profile phone; None when there is neither."""
    name = policy.contact_of_user(user_id)
    number = policy.contacts.get(name) if name else None
    if number is None and policy.defaults.slack_profile_numbers:
        number = directory.phones.get(user_id)
    return Recipient(number, name or policy.contact_name(number)) if number else None


def _no_number(policy: Policy, who: str, user_id: str, directory: Directory) -> UnknownRecipient:
    """Why a linked Slack user cannot be texted: no number, or a profile Slack did not give."""
    if user_id in directory.phones_unread:
        why = directory.phones_unread[user_id]
        return RosterUnread(f"could not read the Slack profile of {who} ({why}); try again")
    where = " or their Slack profile" if policy.defaults.slack_profile_numbers else ""
    return UnknownRecipient(f"{who} has no phone number in the policy{where}")


def _mentioned_user(policy: Policy, user_id: str, directory: Directory) -> Recipient:
    if policy.contact_of_user(user_id) is None:
        raise UnknownRecipient(
            f"{user_mention(user_id)} is not linked to a contact in the policy "
            "(a contact's `slack:` names their user), so the bridge has no number for them"
        )
    recipient = _user_recipient(policy, user_id, directory)
    if recipient is None:
        raise _no_number(policy, user_mention(user_id), user_id, directory)
    return recipient


def _contact(policy: Policy, name: str, directory: Directory) -> Recipient:
    if name in policy.contacts:
        return Recipient(policy.contacts[name], name)
    user_id = policy.contact_slack[name]
    recipient = _user_recipient(policy, user_id, directory)
    if recipient is None:
        raise _no_number(policy, f"{name} ({user_mention(user_id)})", user_id, directory)
    return recipient


def _slack_group(policy: Policy, name: str, directory: Directory) -> Resolved:
    """A group kept in Slack: its members as Slack lists them now, each with a number from
    the file (or profile), and the members with none as unreachable."""
    group_id = policy.slack_groups[name]
    members = directory.members.get(group_id)
    if members is None:
        why = directory.unread.get(group_id, "not read")
        raise RosterUnread(f"could not read {name}'s members from Slack ({why}); try again")
    recipients: list[Recipient] = []
    unreachable: list[str] = []
    unread: list[str] = []
    for user_id in sorted(members):
        recipient = _user_recipient(policy, user_id, directory)
        if recipient is not None:
            recipients.append(recipient)
        elif user_id in directory.phones_unread:
            unread.append(user_mention(user_id))
        else:
            unreachable.append(user_mention(user_id))
    if not recipients and unread:
        why = next(iter(directory.phones_unread.values()))
        raise RosterUnread(
            f"could not read the Slack profiles of {name}'s members ({why}); try again"
        )
    if not recipients:
        nobody = ", ".join(unreachable) or "it has no members"
        raise UnknownRecipient(f"nobody in {name} has a phone number ({nobody})")
    return Resolved(tuple(recipients), tuple(unreachable), tuple(unread))
