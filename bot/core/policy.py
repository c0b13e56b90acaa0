"""Who may send what: pure functions from (policy, request) to a decision.

No Slack, no HTTP, no clock: callers pass everything in, so the same code checks a slash
command, a modal submission and a send that is about to happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.core.directory import (
    EMPTY_DIRECTORY,
    GROUP_MENTION,
    USER_MENTION,
    Directory,
    user_mention,
)
from bot.core.model import WILDCARD, Policy, Recipient, SenderRule
from bot.core.phone import destination_refusal, parse_number
from bot.core.segments import SegmentInfo, analyze
from bot.errors import InvalidNumber, UnknownRecipient

Field = Literal["to", "from", "text", "sender"]


@dataclass(frozen=True)
class Problem:
    """One reason to refuse, tied to the input field it concerns (modals show it there)."""

    field: Field
    message: str


@dataclass(frozen=True)
class SendPlan:
    """Exactly what would be sent, once the policy agrees."""

    sender: str
    from_name: str
    from_number: str
    recipients: tuple[Recipient, ...]
    text: str
    segments: SegmentInfo
    # Slack users a roster named who have no number: not texted, and the outcome says so.
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Allow:
    plan: SendPlan


@dataclass(frozen=True)
class NeedsApproval:
    plan: SendPlan


@dataclass(frozen=True)
class Refuse:
    problems: tuple[Problem, ...]

    @property
    def reason(self) -> str:
        return "; ".join(problem.message for problem in self.problems)

    def for_field(self, field: Field) -> str | None:
        """All problems of one field as one message, for a modal's field error."""
        messages = [problem.message for problem in self.problems if problem.field == field]
        return "; ".join(messages) or None


Decision = Allow | NeedsApproval | Refuse


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


def split_targets(to_text: str) -> list[str]:
    """Split "alice, db-oncall,+4477…" into names/numbers, dropping empty items."""
    return [item.strip() for item in to_text.split(",") if item.strip()]


@dataclass(frozen=True)
class Resolved:
    """A target's recipients, and the Slack users it names who have no number (shown as
    not reachable, so a roster member without a number never silently drops out)."""

    recipients: tuple[Recipient, ...]
    unreachable: tuple[str, ...] = ()


def resolve(policy: Policy, target: str, directory: Directory = EMPTY_DIRECTORY) -> Resolved:
    """A contact, group, Slack mention or number → its recipients.

    Raises InvalidNumber / UnknownRecipient. Slack user groups are read from ``directory``,
    which the caller looked up beforehand.
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


def resolve_target(
    policy: Policy, target: str, directory: Directory = EMPTY_DIRECTORY
) -> tuple[Recipient, ...]:
    """A target's recipients (see ``resolve``)."""
    return resolve(policy, target, directory).recipients


def names_known_slack_target(policy: Policy, target: str) -> bool:
    """Whether ``target`` is a mention of a linked contact or of a group the policy knows,
    which needs no Slack lookup to be recognised as a recipient."""
    if user := USER_MENTION.fullmatch(target):
        return policy.contact_of_user(user.group(1)) is not None
    if group := GROUP_MENTION.fullmatch(target):
        return group.group(1) in policy.slack_groups.values()
    return False


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


def _no_number(policy: Policy, who: str) -> UnknownRecipient:
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
        raise _no_number(policy, user_mention(user_id))
    return recipient


def _contact(policy: Policy, name: str, directory: Directory) -> Recipient:
    if name in policy.contacts:
        return Recipient(policy.contacts[name], name)
    user_id = policy.contact_slack[name]
    recipient = _user_recipient(policy, user_id, directory)
    if recipient is None:
        raise _no_number(policy, f"{name} ({user_mention(user_id)})")
    return recipient


def _slack_group(policy: Policy, name: str, directory: Directory) -> Resolved:
    """A group kept in Slack: its members as Slack lists them now, each with a number from
    the file (or profile), and the members with none as unreachable."""
    members = directory.members.get(policy.slack_groups[name])
    if members is None:
        raise UnknownRecipient(f"could not read {name}'s members from Slack; try again")
    recipients: list[Recipient] = []
    unreachable: list[str] = []
    for user_id in sorted(members):
        recipient = _user_recipient(policy, user_id, directory)
        if recipient is None:
            unreachable.append(user_mention(user_id))
        else:
            recipients.append(recipient)
    if not recipients:
        nobody = ", ".join(unreachable) or "it has no members"
        raise UnknownRecipient(f"nobody in {name} has a phone number ({nobody})")
    return Resolved(tuple(recipients), tuple(unreachable))


def sender_rule(
    policy: Policy, user_id: str, directory: Directory = EMPTY_DIRECTORY
) -> SenderRule | None:
    """The senders entry of a user, listed by id or through a Slack user group (the first
    entry that matches); None: they may not send."""
    for rule in policy.senders:
        if directory.matches(user_id, rule.users):
            return rule
    return None


def is_approver(policy: Policy, user_id: str, directory: Directory = EMPTY_DIRECTORY) -> bool:
    """Whether a user may approve, listed by id or through a Slack user group."""
    return directory.matches(user_id, policy.approvals.approvers)


def _allowed_numbers(
    policy: Policy, rule: SenderRule, directory: Directory
) -> tuple[set[str], tuple[str, ...]]:
    """The exact numbers and the "+44*" prefixes that a senders entry may reach."""
    numbers: set[str] = set()
    prefixes: list[str] = []
    for entry in rule.to:
        if entry.endswith(WILDCARD):
            prefixes.append(entry[:-1])
            continue
        try:
            numbers.update(member.number for member in resolve_target(policy, entry, directory))
        except (InvalidNumber, UnknownRecipient):
            continue  # a roster Slack could not read, or a contact with no number yet
    return numbers, tuple(prefixes)


def may_reach(
    policy: Policy, rule: SenderRule, number: str, directory: Directory = EMPTY_DIRECTORY
) -> bool:
    """Whether a senders entry allows texting this E.164 number."""
    if WILDCARD in rule.to:
        return True
    numbers, prefixes = _allowed_numbers(policy, rule, directory)
    return number in numbers or number.startswith(prefixes)


def allowed_from_names(policy: Policy, rule: SenderRule) -> list[str]:
    """The from-numbers (by name) a senders entry may use, the default first."""
    names = [
        name for name in policy.from_numbers if rule.from_names is None or name in rule.from_names
    ]
    if policy.defaults.from_name in names:
        names.remove(policy.defaults.from_name)
        names.insert(0, policy.defaults.from_name)
    return names


def _recipients(
    policy: Policy,
    rule: SenderRule,
    targets: Sequence[str],
    directory: Directory,
    problems: list[Problem],
) -> tuple[tuple[Recipient, ...], tuple[str, ...]]:
    """The distinct recipients of ``targets`` and the unreachable Slack users among them;
    every target that fails and every recipient the rule may not reach goes to
    ``problems``."""
    recipients: dict[str, Recipient] = {}
    unreachable: dict[str, None] = {}
    if not targets:
        problems.append(Problem("to", "say who to text: a contact, a group or a phone number"))
    for target in targets:
        try:
            resolved = resolve(policy, target, directory)
        except (InvalidNumber, UnknownRecipient) as exc:
            problems.append(Problem("to", str(exc)))
            continue
        unreachable.update(dict.fromkeys(resolved.unreachable))
        for recipient in resolved.recipients:
            recipients.setdefault(recipient.number, recipient)
    for recipient in recipients.values():
        refusal = destination_refusal(recipient.number)
        if refusal:
            problems.append(Problem("to", f"{recipient.label}: {refusal}"))
        elif not may_reach(policy, rule, recipient.number, directory):
            problems.append(Problem("to", f"you may not text {recipient.label}"))
    return tuple(recipients.values()), tuple(unreachable)


def decide(
    policy: Policy,
    sender: str,
    targets: Sequence[str],
    text: str,
    from_name: str | None = None,
    directory: Directory = EMPTY_DIRECTORY,
) -> Decision:
    """Check one send request against the policy and say allow, refuse (why) or approve first.

    Every problem is reported at once, each tied to its field, so a user fixes all in one go.
    ``directory`` holds the Slack user groups and profile phones, looked up by the caller.
    """
    rule = sender_rule(policy, sender, directory)
    if rule is None:
        return Refuse((Problem("sender", "you are not allowed to send SMS from Slack"),))

    problems: list[Problem] = []
    recipients, unreachable = _recipients(policy, rule, targets, directory, problems)

    usable = allowed_from_names(policy, rule)
    chosen_from = from_name or (usable[0] if usable else policy.defaults.from_name)
    if chosen_from not in policy.from_numbers:
        problems.append(Problem("from", f"'{chosen_from}' is not one of the bridge's numbers"))
    elif chosen_from not in usable:
        problems.append(Problem("from", f"you may not send from '{chosen_from}'"))

    segments = analyze(text)
    if not text.strip():
        problems.append(Problem("text", "the message is empty"))
    elif segments.segments > policy.defaults.max_segments:
        problems.append(Problem("text", too_long_message(segments, policy.defaults.max_segments)))

    if problems:
        return Refuse(tuple(problems))
    plan = SendPlan(
        sender=sender,
        from_name=chosen_from,
        from_number=policy.from_numbers[chosen_from],
        recipients=recipients,
        text=text,
        segments=segments,
        unreachable=unreachable,
    )
    return NeedsApproval(plan) if rule.approval_required else Allow(plan)


def too_long_message(segments: SegmentInfo, max_segments: int) -> str:
    """Why a text is too long, naming the character that forced UCS-2 when there is one."""
    message = (
        f"the message is {segments.segments} SMS segments ({segments.encoding}); "
        f"the limit is {max_segments}"
    )
    if segments.first_non_gsm:
        message += f" — '{segments.first_non_gsm}' forces UCS-2, which fits fewer characters"
    return message


AUTO_PAGE_PREFIX = "auto-page:"


def auto_page_sender(channel_id: str) -> str:
    """The pseudo sender of an automatic page: the channel's rule, not a person, sends it."""
    return AUTO_PAGE_PREFIX + channel_id


def trim_to_segments(text: str, max_segments: int, suffix: str = "") -> str:
    """The longest prefix of ``text`` (ending in "…" when cut), followed by ``suffix``,
    within ``max_segments``."""
    if analyze(text + suffix).segments <= max_segments:
        return text + suffix
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if analyze(text[:middle].rstrip() + "…" + suffix).segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…" + suffix


def decide_auto_page(policy: Policy, channel_id: str, text: str) -> Allow | Refuse:
    """An automatic page from a channel's ``auto_page`` rule: its ``page`` target, the
    default from-number, the text trimmed to fit. Allowed by the rule itself (admins wrote
    it), but US numbers and empty texts are still refused."""
    rule = policy.channels.get(channel_id)
    if rule is None or rule.auto_page is None or rule.page is None:
        return Refuse((Problem("sender", "this channel has no auto_page rule"),))
    trimmed = trim_to_segments(text.strip(), policy.defaults.max_segments)
    if not trimmed:
        return Refuse((Problem("text", "the message is empty"),))
    recipients = resolve_target(policy, rule.page)
    refusals = [
        Problem("to", f"{r.label}: {why}")
        for r in recipients
        if (why := destination_refusal(r.number))
    ]
    if refusals:
        return Refuse(tuple(refusals))
    return Allow(
        SendPlan(
            sender=auto_page_sender(channel_id),
            from_name=policy.defaults.from_name,
            from_number=policy.from_numbers[policy.defaults.from_name],
            recipients=recipients,
            text=trimmed,
            segments=analyze(trimmed),
        )
    )
