"""The one answer to "may this person do this", as a table: every action the bridge offers,
every way of being allowed, and every state that way can be in, each with its answer.

An action added to ``bot.core.access.Action`` without a row here fails
``test_every_action_has_a_row``, so no action's permission goes untested.
"""

from __future__ import annotations

from typing import Literal

import pytest

from bot.config import load_policy_text
from bot.core.access import Action, Subject, permission
from bot.core.directory import Directory
from bot.core.model import Policy

LIN, MEM, ANN, NOBODY = "+447700900111", "+447700900222", "+447700900333", "+447700900999"
POLICY_TEXT = """\
version: 1
from_numbers:
  main: "+17137157533"
contacts:
  lin: {lin}
  mem: {{number: "+447700900222", slack: U0MEMBER}}
  ann: "+447700900333"
groups:
  team: {{slack_group: S0TEAM}}
senders:
  - users: [{listed}S0TEAM]
    to: ["*"]
approvals:
  approvers: [{listed}S0TEAM]
"""
LINKED = '{number: "+447700900111", slack: U0LINKED}'


def policy(*, listed: bool = True, linked: bool = True) -> Policy:
    return load_policy_text(
        POLICY_TEXT.format(
            lin=LINKED if linked else '"+447700900111"', listed="U0LISTED, " if listed else ""
        )
    )


Way = Literal["user id", "user group", "linked contact"]
State = Literal["allowed", "removed since", "outsider", "lookup failing", "rate-limited"]
STATES: tuple[State, ...] = (
    "allowed",
    "removed since",
    "outsider",
    "lookup failing",
    "rate-limited",
)
WAYS: tuple[Way, ...] = ("user id", "user group", "linked contact")
# Who acts in each way: a Slack user, or for SMS acks the number that replied (texted by
# name, through the user group's roster, or as the linked contact). U0OPS is in S0TEAM and
# linked to no contact, so only the group allows them.
SLACK_ACTOR: dict[Way, str] = {
    "user id": "U0LISTED",
    "user group": "U0OPS",
    "linked contact": "U0LINKED",
}
SMS_ACTOR: dict[Way, str] = {"user id": ANN, "user group": MEM, "linked contact": LIN}
# Every request and page here was made by someone else and texted all three numbers.
SUBJECT = Subject(requester="U0PAGER", texted=frozenset({LIN, MEM, ANN}))
CAUSE = {"lookup failing": "Slack did not answer within 1.5 s", "rate-limited": "ratelimited"}

Y, N, U = "yes", "no", "unknown"
Row = dict[Way, tuple[str, str, str, str, str]]  # answers in the order of STATES
# Senders and approvers are listed by id and through S0TEAM; a linked contact is neither.
LISTED_ONLY: Row = {
    "user id": (Y, N, N, Y, Y),
    "user group": (Y, N, N, U, U),
    "linked contact": (N, N, N, U, U),
}
# Acks from Slack: senders, approvers, and a linked contact this page texted.
ACK_IN_SLACK: Row = {
    "user id": (Y, N, N, Y, Y),
    "user group": (Y, N, N, U, U),
    "linked contact": (Y, N, N, Y, Y),
}
# Acks by SMS: the number was texted by the page; leaving the roster later does not unsay it.
ACK_BY_SMS: Row = {
    "user id": (Y, Y, N, Y, Y),
    "user group": (Y, Y, N, Y, Y),
    "linked contact": (Y, Y, N, Y, Y),
}
TABLE: dict[Action, Row] = {
    Action.SEND: LISTED_ONLY,
    Action.APPROVE: LISTED_ONLY,
    Action.REJECT: LISTED_ONLY,
    Action.ACK_BUTTON: ACK_IN_SLACK,
    Action.ACK_REACTION: ACK_IN_SLACK,
    Action.ACK_CODE: ACK_BY_SMS,
    Action.ACK_WORD: ACK_BY_SMS,
    Action.ESCALATE: LISTED_ONLY,  # and the person who paged (below)
    Action.STOP: LISTED_ONLY,
    Action.RETRY: LISTED_ONLY,
    Action.STATUS: LISTED_ONLY,
    Action.HELP: LISTED_ONLY,
    Action.HOME: LISTED_ONLY,
}


def situation(way: Way, state: State) -> tuple[Policy, Directory]:
    """The policy and the Slack snapshot of one cell: ``state`` applied to ``way``."""
    members = {"S0TEAM": frozenset({"U0MEMBER", "U0OPS"})}
    if state == "removed since":
        if way == "user id":
            return policy(listed=False), Directory(members)
        if way == "linked contact":
            return policy(linked=False), Directory(members)
        return policy(), Directory({"S0TEAM": frozenset()})
    if state in CAUSE:
        return policy(), Directory({}, unread={"S0TEAM": CAUSE[state]})
    return policy(), Directory(members)


def test_every_action_has_a_row() -> None:
    assert set(TABLE) == set(Action)


CELLS = [
    (action, way, index, state)
    for action in TABLE
    for way in WAYS
    for index, state in enumerate(STATES)
]


@pytest.mark.parametrize(("action", "way", "index", "state"), CELLS)
def test_permission(action: Action, way: Way, index: int, state: State) -> None:
    expected = TABLE[action][way][index]
    actors = SMS_ACTOR if action in (Action.ACK_CODE, Action.ACK_WORD) else SLACK_ACTOR
    actor = actors[way]
    if state == "outsider":
        actor = NOBODY if actors is SMS_ACTOR else "U0STRANGER"
    current, directory = situation(way, state)
    verdict = permission(current, directory, actor, action, SUBJECT)
    assert verdict.answer == expected, f"{action} / {way} / {state}: {verdict}"
    refusal = verdict.refusal()
    if expected == Y:
        assert refusal is None
    elif expected == U:  # never "not allowed": which roster, why, and to try again
        assert refusal is not None and "S0TEAM" in refusal and CAUSE[state] in refusal
        assert "try again" in refusal and "not allowed" not in refusal
    else:
        assert refusal


@pytest.mark.parametrize("action", [Action.ESCALATE, Action.STOP, Action.RETRY])
def test_the_requester_may_move_their_own_page_or_retry_their_own_text(action: Action) -> None:
    failing = Directory({}, unread={"S0TEAM": "ratelimited"})
    assert permission(policy(), failing, "U0PAGER", action, SUBJECT).allowed
    assert not permission(policy(), Directory(), "U0PAGER", action, Subject()).allowed


@pytest.mark.parametrize("action", [Action.APPROVE, Action.REJECT])
def test_approvers_may_not_decide_their_own_texts_unless_the_policy_allows(
    action: Action,
) -> None:
    own = Subject(requester="U0LISTED")
    verdict = permission(policy(), Directory(), "U0LISTED", action, own)
    assert verdict.answer == N and verdict.refusal() == "you cannot approve or reject your own text"
    lenient = load_policy_text(
        POLICY_TEXT.format(lin=LINKED, listed="U0LISTED, ").replace(
            "approvers: [U0LISTED, S0TEAM]",
            "approvers: [U0LISTED, S0TEAM]\n  allow_self_approval: true",
        )
    )
    assert permission(lenient, Directory(), "U0LISTED", action, own).allowed


def test_the_first_senders_entry_decides_so_an_unreadable_group_before_it_leaves_it_open() -> None:
    text = POLICY_TEXT.format(lin=LINKED, listed="").replace(
        '  - users: [S0TEAM]\n    to: ["*"]',
        '  - users: [S0TEAM]\n    to: [team]\n  - users: [U0LATER]\n    to: ["*"]',
    )
    later = load_policy_text(text)
    assert permission(later, Directory({"S0TEAM": frozenset()}), "U0LATER", Action.SEND).allowed
    unread = Directory({}, unread={"S0TEAM": "ratelimited"})
    assert permission(later, unread, "U0LATER", Action.SEND).answer == U


@pytest.mark.parametrize("action", [Action.ACK_BUTTON, Action.ACK_REACTION])
def test_a_linked_user_texted_at_their_profile_phone_may_ack_in_slack(action: Action) -> None:
    text = POLICY_TEXT.format(lin=LINKED, listed="U0LISTED, ").replace(
        '  ann: "+447700900333"', '  ann: "+447700900333"\n  pat: {slack: U0PAT}'
    )
    current = load_policy_text(text)
    profile = Directory({"S0TEAM": frozenset()}, phones={"U0PAT": "+447700900444"})
    texted = Subject(requester="U0PAGER", texted=frozenset({"+447700900444"}))
    assert permission(current, profile, "U0PAT", action, texted).allowed
    assert not permission(current, profile, "U0PAT", action, SUBJECT).allowed
