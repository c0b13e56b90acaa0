"""Who may send what: pure functions from (policy, request) to a decision.

No Slack, no HTTP, no clock: callers pass everything in, so the same code checks a slash
command, a modal submission and a send that is about to happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.core.access import Action, permission
from bot.core.directory import EMPTY_DIRECTORY, Directory
from bot.core.escalation import CODE_LENGTHS, code_suffix
from bot.core.model import WILDCARD, Policy, Recipient, SenderRule
from bot.core.phone import destination_refusal
from bot.core.rosters import Resolved, merge, resolve_all, resolve_target
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
    # Slack users whose profile phone could not be read (never "no number"): not texted.
    unread: tuple[str, ...] = ()
    # Why targets of an auto-page that reaches others were skipped (``Resolved.skipped``).
    skipped: tuple[str, ...] = ()
    # The recipients as named ("db-oncall", "<@U…>"): a send that runs later (after an
    # approval) resolves them again, so it texts a roster as it is then.
    targets: tuple[str, ...] = ()
    shortened: bool = False  # an alert's text cut to fit max_segments (the thread says so)


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


def sender_rule(policy: Policy, user_id: str, directory: Directory) -> SenderRule | None:
    """The senders entry of a user, listed by id or through a Slack user group (the first
    entry that matches); None: they may not send, or ``permission`` cannot tell."""
    for rule in policy.senders:
        listed = directory.matches(user_id, rule.users)
        if listed is not False:
            return rule if listed else None
    return None


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


def may_reach(policy: Policy, rule: SenderRule, number: str, directory: Directory) -> bool:
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
) -> Resolved:
    """The distinct recipients of ``targets`` and the unreachable Slack users among them;
    every target that fails and every recipient the rule may not reach goes to
    ``problems``."""
    if not targets:
        problems.append(Problem("to", "say who to text: a contact, a group or a phone number"))
    failed: list[InvalidNumber | UnknownRecipient] = []
    resolved = merge(policy, targets, directory, failed)
    problems.extend(Problem("to", str(why)) for why in failed)
    for recipient in resolved.recipients:
        refusal = destination_refusal(recipient.number)
        if refusal:
            problems.append(Problem("to", f"{recipient.label}: {refusal}"))
        elif not may_reach(policy, rule, recipient.number, directory):
            problems.append(Problem("to", f"you may not text {recipient.label}"))
    return resolved


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
    rule, refusal = _sender(policy, sender, directory)
    if rule is None:
        return Refuse((Problem("sender", refusal),))

    problems: list[Problem] = []
    resolved = _recipients(policy, rule, targets, directory, problems)
    chosen_from = _check_from_and_text(policy, rule, text, from_name, problems)
    if problems:
        return Refuse(tuple(problems))
    plan = SendPlan(
        sender=sender,
        from_name=chosen_from,
        from_number=policy.from_numbers[chosen_from],
        recipients=resolved.recipients,
        text=text,
        segments=analyze(text),
        unreachable=resolved.unreachable,
        unread=resolved.unread,
        targets=tuple(targets),
    )
    return NeedsApproval(plan) if rule.approval_required else Allow(plan)


def _sender(policy: Policy, sender: str, directory: Directory) -> tuple[SenderRule | None, str]:
    """The sender's ``senders`` entry, or None and why not (``permission`` says)."""
    verdict = permission(policy, directory, sender, Action.SEND)
    rule = sender_rule(policy, sender, directory)
    if rule is None or not verdict.allowed:
        return None, verdict.refusal() or "you may not send"
    return rule, ""


def _check_from_and_text(
    policy: Policy, rule: SenderRule, text: str, from_name: str | None, problems: list[Problem]
) -> str:
    """The from-number to use (by name); its problems and the text's go to ``problems``."""
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
    return chosen_from


@dataclass(frozen=True)
class Recheck:
    """A recorded request checked again when it is sent: why none of it may go (``whole``),
    else why each recipient that may not go (by number) may not."""

    whole: str | None = None
    held: Mapping[str, str] = field(default_factory=dict)
    needs_approval: bool = False  # the sender's texts wait for an approver

    def reason(self, number: str) -> str | None:
        return self.whole or self.held.get(number)


def recheck(
    policy: Policy,
    sender: str,
    targets: Sequence[str],
    numbers: Sequence[str],
    text: str,
    from_name: str,
    directory: Directory,
) -> Recheck:
    """Authorize a recorded request again at send time, with the policy and Slack user groups
    as they are now: the sender, the from-number and the text for the whole request; each
    recipient on its own, so one who left a roster named in ``targets`` (read again now) is
    not texted and the others still are."""
    rule, refusal = _sender(policy, sender, directory)
    if rule is None:
        return Recheck(refusal)
    problems: list[Problem] = []
    _check_from_and_text(policy, rule, text, from_name, problems)
    if problems:
        return Recheck("; ".join(problem.message for problem in problems))
    current: set[str] = set()
    unread: list[str] = []
    for target in targets:
        try:
            current.update(r.number for r in resolve_target(policy, target, directory))
        except (InvalidNumber, UnknownRecipient) as exc:
            unread.append(str(exc))
    held: dict[str, str] = {}
    for number in numbers:
        if number not in current:
            held[number] = "; ".join(unread) or "no longer on the roster it was texted through"
        elif why := destination_refusal(number):
            held[number] = why
        elif not may_reach(policy, rule, number, directory):
            held[number] = "the sender may no longer text this number"
    return Recheck(None, held, rule.approval_required)


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
    """The longest prefix of ``text``, marked as cut, followed by ``suffix``, within
    ``max_segments``. The mark keeps the text's alphabet: "..." for a GSM-7 text, since
    "…" is not GSM-7 and would make it UCS-2, halving what fits."""
    if analyze(text + suffix).segments <= max_segments:
        return text + suffix
    mark = "..." if analyze(text + suffix).encoding == "GSM-7" else "…"
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if analyze(text[:middle].rstrip() + mark + suffix).segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + mark + suffix


def page_targets(policy: Policy, channel_id: str) -> tuple[str, ...]:
    """Whom a page in a channel reaches when it names nobody: its ladder's first tier when
    the channel escalates, else its ``page`` target (nobody: no such channel rule)."""
    rule = policy.channels.get(channel_id)
    if rule is None:
        return ()
    ladder = policy.escalations.get(rule.escalation) if rule.escalation else None
    return ladder.tiers[0].page if ladder else tuple(filter(None, (rule.page,)))


def decide_auto_page(
    policy: Policy, channel_id: str, text: str, directory: Directory
) -> Allow | Refuse:
    """An automatic page from a channel's ``auto_page`` rule: whom a page there reaches, the
    default from-number, the text trimmed to fit. Allowed by the rule itself (admins wrote
    it), but US numbers and empty texts are still refused, and a roster that cannot be read
    is refused with why rather than paging nobody."""
    rule = policy.channels.get(channel_id)
    targets = page_targets(policy, channel_id)
    if rule is None or rule.auto_page is None or not targets:
        return Refuse((Problem("sender", "this channel has no auto_page rule"),))
    # Room for the longest reply code a ladder may add, so the page is cut only here, once.
    room = code_suffix("A" * max(CODE_LENGTHS)) if rule.escalation else ""
    trimmed = trim_to_segments(text.strip(), policy.defaults.max_segments, room)
    trimmed = trimmed.removesuffix(room) if room else trimmed
    if not trimmed:
        return Refuse((Problem("text", "the message is empty"),))
    try:
        resolved = resolve_all(policy, targets, directory)
    except (InvalidNumber, UnknownRecipient) as exc:
        return Refuse((Problem("to", str(exc)),))
    refusals = [
        Problem("to", f"{r.label}: {why}")
        for r in resolved.recipients
        if (why := destination_refusal(r.number))
    ]
    if refusals:
        return Refuse(tuple(refusals))
    return Allow(
        SendPlan(
            sender=auto_page_sender(channel_id),
            from_name=policy.defaults.from_name,
            from_number=policy.from_numbers[policy.defaults.from_name],
            recipients=resolved.recipients,
            text=trimmed,
            segments=analyze(trimmed),
            unreachable=resolved.unreachable,
            unread=resolved.unread,
            skipped=resolved.skipped,
            targets=targets,
            shortened=trimmed != text.strip(),
        )
    )


def recheck_auto_page(
    policy: Policy, channel_id: str, text: str, numbers: Sequence[str], directory: Directory
) -> Recheck:
    """An auto-page's send-time check: refused as a whole when its rule would refuse it now,
    else each number no longer on the roster it was texted through is held back."""
    auto = decide_auto_page(policy, channel_id, text, directory)
    if isinstance(auto, Refuse):
        return Recheck(auto.reason)
    now = {recipient.number for recipient in auto.plan.recipients}
    gone = "no longer on the roster it was texted through"
    return Recheck(held={number: gone for number in numbers if number not in now})
