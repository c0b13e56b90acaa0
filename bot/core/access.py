"""May this person do this? The one answer for every action the bridge offers.

Every surface (the ``/sms`` command, the modal, paging, approvals, the pager board's
buttons and ✅, SMS acks, Retry, ``/sms status``, ``/sms help``, App Home) asks ``permission``
with the same ``Directory`` snapshot of Slack user groups, so someone allowed through a
user group is allowed everywhere, and a roster Slack could not read is reported as that
("try again"), never as a refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.core.directory import Directory, Membership, any_of
from bot.core.model import Policy


class Action(StrEnum):
    """Everything someone can ask the bridge to do."""

    SEND = "send"  # /sms, the modal, @bot page, the page shortcut
    APPROVE = "approve"
    REJECT = "reject"
    ACK_BUTTON = "ack by button"  # the pager board's Ack
    ACK_REACTION = "ack by reaction"  # a ✅ on the pager board
    ACK_CODE = "ack by SMS code"  # an SMS reply naming the page's code
    ACK_WORD = "ack by SMS word"  # an SMS reply "ok" from someone with one open page
    ESCALATE = "escalate now"
    STOP = "stop paging"
    RETRY = "retry"  # a send whose outcome is unknown
    STATUS = "status"  # /sms status <id>
    HELP = "help"  # the opt-out list in /sms help and App Home
    HOME = "home"  # the approvals waiting, in App Home


@dataclass(frozen=True)
class Subject:
    """What an action is about, where the answer depends on it: who asked for the request
    or page, and the numbers the page has texted."""

    requester: str | None = None
    texted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    """``yes``, ``no`` (``why`` is what the person is told), or ``unknown``: a Slack user
    group that decides it could not be read (``why`` names it and the cause)."""

    answer: Literal["yes", "no", "unknown"]
    why: str = ""

    @property
    def allowed(self) -> bool:
        return self.answer == "yes"

    def sentence(self) -> str:
        """The refusal as a sentence of its own ("" for a yes)."""
        refusal = self.refusal() or ""
        return f"{refusal[:1].upper()}{refusal[1:]}." if refusal else ""

    def refusal(self) -> str | None:
        """What to tell the person when it is not a yes, or None."""
        if self.answer == "yes":
            return None
        if self.answer == "no":
            return self.why
        return f"the bridge could not read {self.why} from Slack; try again in a moment"


YES = Verdict("yes")

_ACK_IN_SLACK = "only people allowed to send SMS, approvers, or people this page texted can ack it"
_MOVE_PAGE = "only the person who paged or an approver can escalate or stop this page"
_DECIDE = "only approvers can approve or reject texts"
# Why each action is refused, in the words the person reads.
REFUSALS: dict[Action, str] = {
    Action.SEND: "you are not allowed to send SMS from Slack",
    Action.APPROVE: _DECIDE,
    Action.REJECT: _DECIDE,
    Action.ACK_BUTTON: _ACK_IN_SLACK,
    Action.ACK_REACTION: _ACK_IN_SLACK,
    Action.ACK_CODE: "this number was not texted by that page",
    Action.ACK_WORD: "this number was not texted by that page",
    Action.ESCALATE: _MOVE_PAGE,
    Action.STOP: _MOVE_PAGE,
    Action.RETRY: "only the requester or an approver can retry this text",
    Action.STATUS: "only people who may send SMS can look up sends",
    Action.HELP: "only people who may send SMS see the opt-out list",
    Action.HOME: "only approvers see the approvals waiting",
}
SELF_APPROVAL = "you cannot approve or reject your own text"


def is_sender(policy: Policy, user: str, directory: Directory) -> Membership:
    """Whether a ``senders`` entry lists the user, by id or through a user group. The first
    entry that lists them sets their rules, so an unreadable group in an entry before it
    leaves the answer unknown."""
    for rule in policy.senders:
        listed = directory.matches(user, rule.users)
        if listed is not False:
            return listed
    return False


def is_approver(policy: Policy, user: str, directory: Directory) -> Membership:
    return directory.matches(user, policy.approvals.approvers)


Rule = Callable[[Policy, str, Directory, Subject], Membership]


def _requester(_: Policy, user: str, __: Directory, subject: Subject) -> Membership:
    return subject.requester is not None and user == subject.requester


def _sender(policy: Policy, user: str, directory: Directory, _: Subject) -> Membership:
    return is_sender(policy, user, directory)


def _approver(policy: Policy, user: str, directory: Directory, _: Subject) -> Membership:
    return is_approver(policy, user, directory)


def _linked(policy: Policy, user: str, directory: Directory, subject: Subject) -> Membership:
    """A Slack user linked to a contact whose number (in the file, or their profile phone)
    this page texted: they got the page."""
    name = policy.contact_of_user(user)
    if name is None:
        return False
    number = policy.contacts.get(name) or directory.phones.get(user)
    return number in subject.texted


def _texted(_: Policy, number: str, __: Directory, subject: Subject) -> Membership:
    return number in subject.texted


# Each action: who may take it (any one of these suffices).
WHO_MAY: dict[Action, tuple[Rule, ...]] = {
    Action.SEND: (_sender,),
    Action.APPROVE: (_approver,),
    Action.REJECT: (_approver,),
    Action.ACK_BUTTON: (_sender, _approver, _linked),
    Action.ACK_REACTION: (_sender, _approver, _linked),
    Action.ACK_CODE: (_texted,),
    Action.ACK_WORD: (_texted,),
    Action.ESCALATE: (_requester, _approver),
    Action.STOP: (_requester, _approver),
    Action.RETRY: (_requester, _approver),
    Action.STATUS: (_sender, _approver),
    Action.HELP: (_sender, _approver),
    Action.HOME: (_approver,),
}


def permission(
    policy: Policy,
    directory: Directory,
    actor: str,
    action: Action,
    subject: Subject | None = None,
) -> Verdict:
    """May ``actor`` (a Slack user id; for SMS acks, the number that replied) take
    ``action`` on ``subject``, with Slack user groups as ``directory`` has them?"""
    subject = subject or Subject()
    answer = any_of(rule(policy, actor, directory, subject) for rule in WHO_MAY[action])
    if answer is None:
        return Verdict("unknown", _unread(directory, _lists(policy, action)))
    if not answer:
        return Verdict("no", REFUSALS[action])
    deciding = action in (Action.APPROVE, Action.REJECT)
    if deciding and actor == subject.requester and not policy.approvals.allow_self_approval:
        return Verdict("no", SELF_APPROVAL)
    return YES


def _lists(policy: Policy, action: Action) -> Iterable[str]:
    """The user and user group entries an action's answer may depend on."""
    rules = WHO_MAY[action]
    entries: list[str] = []
    if _sender in rules:
        entries += [user for rule in policy.senders for user in rule.users]
    if _approver in rules:
        entries += policy.approvals.approvers
    return entries


def _unread(directory: Directory, listed: Iterable[str]) -> str:
    """The user groups that could not be read, and why, as a refusal names them."""
    unread = directory.unread_among(listed)
    return ", ".join(f"user group {group} ({why})" for group, why in unread.items())
