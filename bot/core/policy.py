"""Who may send what: pure functions from (policy, request) to a decision.

No Slack, no HTTP, no clock: callers pass everything in, so the same code checks a slash
command, a modal submission and a send that is about to happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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


def split_targets(to_text: str) -> list[str]:
    """Split "alice, db-oncall,+4477…" into names/numbers, dropping empty items."""
    return [item.strip() for item in to_text.split(",") if item.strip()]


def resolve_target(policy: Policy, target: str) -> tuple[Recipient, ...]:
    """A contact, group or number → its recipients. Raises InvalidNumber / UnknownRecipient."""
    if target in policy.groups:
        return policy.groups[target]
    if target in policy.contacts:
        return (Recipient(policy.contacts[target], target),)
    if not any(char.isdigit() for char in target):
        raise UnknownRecipient(f"'{target}' is not a contact, a group or a phone number")
    number = parse_number(target, policy.defaults.region)
    return (Recipient(number, policy.contact_name(number)),)


def _allowed_numbers(policy: Policy, rule: SenderRule) -> tuple[set[str], tuple[str, ...]]:
    """The exact numbers and the "+44*" prefixes that a senders entry may reach."""
    numbers: set[str] = set()
    prefixes: list[str] = []
    for entry in rule.to:
        if entry in policy.groups:
            numbers.update(member.number for member in policy.groups[entry])
        elif entry in policy.contacts:
            numbers.add(policy.contacts[entry])
        elif entry.endswith(WILDCARD):
            prefixes.append(entry[:-1])
        else:
            numbers.add(entry)
    return numbers, tuple(prefixes)


def may_reach(policy: Policy, rule: SenderRule, number: str) -> bool:
    """Whether a senders entry allows texting this E.164 number."""
    if WILDCARD in rule.to:
        return True
    numbers, prefixes = _allowed_numbers(policy, rule)
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


def decide(
    policy: Policy,
    sender: str,
    targets: Sequence[str],
    text: str,
    from_name: str | None = None,
) -> Decision:
    """Check one send request against the policy and say allow, refuse (why) or approve first.

    Every problem is reported at once, each tied to its field, so a user fixes all in one go.
    """
    rule = policy.rule_for(sender)
    if rule is None:
        return Refuse((Problem("sender", "you are not allowed to send SMS from Slack"),))

    problems: list[Problem] = []
    recipients: dict[str, Recipient] = {}
    if not targets:
        problems.append(Problem("to", "say who to text: a contact, a group or a phone number"))
    for target in targets:
        try:
            resolved = resolve_target(policy, target)
        except (InvalidNumber, UnknownRecipient) as exc:
            problems.append(Problem("to", str(exc)))
            continue
        for recipient in resolved:
            recipients.setdefault(recipient.number, recipient)

    for recipient in recipients.values():
        refusal = destination_refusal(recipient.number)
        if refusal:
            problems.append(Problem("to", f"{recipient.label}: {refusal}"))
        elif not may_reach(policy, rule, recipient.number):
            problems.append(Problem("to", f"you may not text {recipient.label}"))

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
        recipients=tuple(recipients.values()),
        text=text,
        segments=segments,
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


def trim_to_segments(text: str, max_segments: int) -> str:
    """The longest prefix of ``text`` (ending in "…" when cut) within ``max_segments``."""
    if analyze(text).segments <= max_segments:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if analyze(text[:middle].rstrip() + "…").segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


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
