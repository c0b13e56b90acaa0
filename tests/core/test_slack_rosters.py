"""Rosters kept in Slack, decided purely: a ``Directory`` snapshot (user group members,
profile phones) goes into ``decide`` and the policy says who is texted and who may send."""

from __future__ import annotations

import pytest

from bot.config import load_policy_text
from bot.core.access import is_approver
from bot.core.directory import EMPTY_DIRECTORY, Directory
from bot.core.model import Policy, Recipient
from bot.core.page_command import PageCommand, parse_page
from bot.core.policy import Allow, NeedsApproval, Refuse, decide, sender_rule
from bot.core.rosters import reads_slack, resolve_all
from bot.errors import RosterUnread, UnknownRecipient

ALICE, BOB = "+447700900123", "+447700900456"
POLICY_TEXT = """\
version: 1
defaults:
  slack_profile_numbers: {profiles}
from_numbers:
  main: "+17137157533"
contacts:
  alice: {{number: "+447700900123", slack: U0ALICE}}
  bob: "+447700900456"
  dan: {{slack: U0DAN}}
groups:
  db-oncall: {{slack_group: S0DBONCALL}}
senders:
  - users: [U0ADMIN, S0SENDERS]
    to: ["*"]
  - users: [U0DEV1]
    to: [db-oncall]
  - users: [S0INTERNS]
    to: ["*"]
    approval: required
approvals:
  approvers: [U0LEAD, S0LEADS]
"""


def policy(profiles: bool = False) -> Policy:
    return load_policy_text(POLICY_TEXT.format(profiles=str(profiles).lower()))


def directory(
    oncall: tuple[str, ...] = ("U0ALICE", "U0CAROL"), phones: dict[str, str] | None = None
) -> Directory:
    return Directory(
        members={
            "S0DBONCALL": frozenset(oncall),
            "S0SENDERS": frozenset({"U0OPS"}),
            "S0INTERNS": frozenset({"U0INTERN"}),
            "S0LEADS": frozenset({"U0DEPUTY"}),
        },
        phones=phones or {},
    )


def allowed(decision: object) -> Allow:
    assert isinstance(decision, Allow), decision
    return decision


def refused(decision: object) -> str:
    assert isinstance(decision, Refuse), decision
    return decision.reason


def test_a_mention_of_a_linked_contact_reaches_their_number() -> None:
    plan = allowed(decide(policy(), "U0ADMIN", ["<@U0ALICE>"], "hi", directory=directory())).plan
    assert plan.recipients == (Recipient(ALICE, "alice"),)


def test_a_mention_of_someone_with_no_number_is_refused_naming_them() -> None:
    assert refused(decide(policy(), "U0ADMIN", ["<@U0DAN>"], "hi")) == (
        "<@U0DAN> has no phone number in the policy"
    )
    assert "<@U0STRANGER> is not linked to a contact" in refused(
        decide(policy(), "U0ADMIN", ["<@U0STRANGER>"], "hi")
    )


def test_a_user_group_is_its_members_now_and_those_without_a_number_are_unreachable() -> None:
    plan = allowed(decide(policy(), "U0ADMIN", ["db-oncall"], "hi", directory=directory())).plan
    assert plan.recipients == (Recipient(ALICE, "alice"),)
    assert plan.unreachable == ("<@U0CAROL>",)
    later = directory(oncall=("U0ALICE", "U0DAN", "U0BOBSLACK"))
    plan = allowed(decide(policy(), "U0ADMIN", ["db-oncall"], "hi", directory=later)).plan
    assert plan.unreachable == ("<@U0BOBSLACK>", "<@U0DAN>")


def test_a_group_mention_resolves_to_the_policy_group_it_is_linked_to() -> None:
    targets = ["<!subteam^S0DBONCALL>"]
    plan = allowed(decide(policy(), "U0ADMIN", targets, "hi", directory=directory())).plan
    assert [r.number for r in plan.recipients] == [ALICE]
    assert "<!subteam^S0OTHER> is not a group in the policy" in refused(
        decide(policy(), "U0ADMIN", ["<!subteam^S0OTHER>"], "hi", directory=directory())
    )


def test_a_roster_slack_could_not_read_or_with_nobody_reachable_is_refused() -> None:
    assert "could not read db-oncall's members from Slack" in refused(
        decide(policy(), "U0ADMIN", ["db-oncall"], "hi")
    )
    nobody = directory(oncall=("U0CAROL",))
    assert refused(decide(policy(), "U0ADMIN", ["db-oncall"], "hi", directory=nobody)) == (
        "nobody in db-oncall has a phone number (<@U0CAROL>)"
    )


def test_a_page_skips_a_roster_slack_could_not_read_and_says_why() -> None:
    """A page's rosters resolve as far as Slack answered: the rest is skipped with why
    (``Resolved.skipped``, for the page's thread), and only a page reaching nobody fails."""
    unread = Directory(members={}, unread={"S0DBONCALL": "Slack answered fatal_error"})
    found = resolve_all(policy(), ["bob", "db-oncall"], unread)
    assert [r.number for r in found.recipients] == [BOB]
    assert found.skipped == (
        "could not read db-oncall's members from Slack (Slack answered fatal_error); try again",
    )
    assert resolve_all(policy(), ["bob", "db-oncall"], directory()).skipped == ()
    with pytest.raises(UnknownRecipient, match="could not read db-oncall's members"):
        resolve_all(policy(), ["db-oncall"], unread)


def test_a_page_reaching_nobody_says_whether_slack_is_the_cause() -> None:
    """RosterUnread (ask Slack again) only when a roster Slack did not give is why nobody
    can be texted: an empty roster or one without numbers is no reason to wait."""
    unread = Directory(members={}, unread={"S0DBONCALL": "Slack answered fatal_error"})
    with pytest.raises(RosterUnread):
        resolve_all(policy(), ["db-oncall", "U0NOBODY"], unread)
    profiles = Directory(members={}, phones_unread={"U0DAN": "Slack answered fatal_error"})
    with pytest.raises(RosterUnread, match="could not read the Slack profile of dan"):
        resolve_all(policy(profiles=True), ["dan"], profiles)
    with pytest.raises(UnknownRecipient) as empty:
        resolve_all(policy(), ["db-oncall"], directory(oncall=("U0CAROL",)))
    assert not isinstance(empty.value, RosterUnread)


@pytest.mark.parametrize(
    ("targets", "profiles", "asks"),
    [
        (["bob", "alice", "+447700900999"], True, False),  # numbers in the file
        (["<@U0ALICE>"], True, False),  # a linked contact with a number
        (["db-oncall"], False, True),  # a group kept in Slack
        (["<!subteam^S0DBONCALL>"], False, True),
        (["dan"], True, True),  # a number only on the Slack profile
        (["<@U0DAN>"], True, True),
        (["dan"], False, False),  # profiles off: no number, nothing to ask Slack
    ],
)
def test_only_rosters_kept_in_slack_ask_slack(
    targets: list[str], profiles: bool, asks: bool
) -> None:
    assert reads_slack(policy(profiles), targets) is asks


def test_senders_may_reach_a_slack_roster_only_as_its_members_are_now() -> None:
    assert allowed(decide(policy(), "U0DEV1", [ALICE], "hi", directory=directory()))
    gone = directory(oncall=("U0CAROL", "U0DAN"), phones={"U0DAN": BOB})
    assert "you may not text alice" in refused(
        decide(policy(), "U0DEV1", [ALICE], "hi", directory=gone)
    )


@pytest.mark.parametrize(("user", "rule_index"), [("U0OPS", 0), ("U0INTERN", 2)])
def test_senders_and_approvers_may_be_user_groups(user: str, rule_index: int) -> None:
    p = policy()
    assert sender_rule(p, user, directory()) is p.senders[rule_index]
    # without the snapshot nobody is in a group
    assert sender_rule(p, user, EMPTY_DIRECTORY) is None
    assert is_approver(p, "U0DEPUTY", directory()) and is_approver(p, "U0LEAD", EMPTY_DIRECTORY)
    assert not is_approver(p, "U0OPS", directory())
    decision = decide(p, "U0INTERN", ["bob"], "hi", directory=directory())
    assert isinstance(decision, NeedsApproval)


def test_profile_phones_are_used_only_when_the_policy_turns_them_on() -> None:
    phones = directory(oncall=("U0ALICE", "U0CAROL"), phones={"U0DAN": BOB, "U0CAROL": BOB})
    assert "no phone number" in refused(
        decide(policy(), "U0ADMIN", ["<@U0DAN>"], "hi", directory=phones)
    )
    plan = allowed(decide(policy(True), "U0ADMIN", ["dan"], "hi", directory=phones)).plan
    assert plan.recipients == (Recipient(BOB, "dan"),)
    plan = allowed(decide(policy(True), "U0ADMIN", ["db-oncall"], "hi", directory=phones)).plan
    assert [r.number for r in plan.recipients] == [ALICE, BOB] and plan.unreachable == ()
    assert refused(decide(policy(True), "U0ADMIN", ["<@U0DAN>"], "hi")) == (
        "<@U0DAN> has no phone number in the policy or their Slack profile"
    )


def test_a_page_treats_a_mention_as_a_target_only_when_the_policy_knows_it() -> None:
    p = policy()
    linked = parse_page(p, "<@UBOT> page <@U0ALICE|alice> db down", "UBOT")
    assert linked == PageCommand(("<@U0ALICE>",), "db down")
    group = parse_page(p, "<@UBOT> page <!subteam^S0DBONCALL|@db-oncall> db down", "UBOT")
    assert group == PageCommand(("<!subteam^S0DBONCALL>",), "db down")
    assert parse_page(p, "<@UBOT> page <@U0SOMEONE> is on it", "UBOT", {"U0SOMEONE": "Sam"}) == (
        PageCommand((), "@Sam is on it")
    )
