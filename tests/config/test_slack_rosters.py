"""The policy file's Slack links: contacts naming their Slack user, groups kept as Slack user
groups, user groups as senders and approvers, and the profile-phone switch; malformed ids
are reported where they are written."""

from __future__ import annotations

from bot.config import load_policy_text, summarize
from tests.config.helpers import BASE, problems_of

LINKED = """\
version: 1
defaults:
  slack_profile_numbers: true
from_numbers:
  main: "+17137157533"
contacts:
  alice: {number: "+447700900123", slack: U0ALICE}
  bob: "+447700900456"
  dan: {slack: W0DAN}
groups:
  db-oncall: {slack_group: S0DBONCALL}
  pair: [alice, bob]
senders:
  - users: [U0ADMIN, S0OPS]
    to: [db-oncall, dan]
approvals:
  approvers: [S0LEADS]
"""


def test_slack_links_load_beside_the_plain_forms() -> None:
    policy = load_policy_text(LINKED)
    assert policy.contacts == {"alice": "+447700900123", "bob": "+447700900456"}
    assert policy.contact_slack == {"alice": "U0ALICE", "dan": "W0DAN"}
    assert policy.slack_groups == {"db-oncall": "S0DBONCALL"}
    assert [r.label for r in policy.groups["pair"]] == ["alice", "bob"]
    assert policy.senders[0].users == ("U0ADMIN", "S0OPS")
    assert policy.approvals.approvers == frozenset({"S0LEADS"})
    assert policy.defaults.slack_profile_numbers
    assert policy.user_groups() == frozenset({"S0DBONCALL", "S0OPS", "S0LEADS"})


def test_profile_numbers_are_off_unless_turned_on() -> None:
    policy = load_policy_text(LINKED.replace("  slack_profile_numbers: true\n", ""))
    assert not policy.defaults.slack_profile_numbers


def test_malformed_slack_ids_are_reported_where_they_are_written() -> None:
    text = (
        BASE
        + "  carol: {slack: C0CAROL}\n"
        + "  dan: {slack: alice}\n"
        + "groups:\n"
        + "  ops: {slack_group: U0OPS}\n"
        + "  sre: {slack_group: '@sre'}\n"
        + "senders:\n"
        + "  - users: [s0lower]\n"
        + "    to: ['*']\n"
    )
    assert problems_of(text) == [
        "t.yaml:7: contacts.carol.slack: 'C0CAROL' is not a Slack user ID (like U0123ABCD)",
        "t.yaml:8: contacts.dan.slack: 'alice' is not a Slack user ID (like U0123ABCD)",
        "t.yaml:10: groups.ops.slack_group: 'U0OPS' is not a Slack user group ID (like S0123ABCD)",
        "t.yaml:11: groups.sre.slack_group: '@sre' is not a Slack user group ID (like S0123ABCD)",
        "t.yaml:13: senders[0].users[0]: 's0lower' is not a Slack user ID (like U0123ABCD) "
        "or user group ID (like S0123ABCD)",
    ]


def test_contact_and_group_shapes_that_cannot_work_are_reported() -> None:
    text = (
        BASE
        + "  carol: {slack: U0ALICE}\n"
        + "  dan: {slack: U0ALICE}\n"
        + "  erin: {}\n"
        + "  fay: {numbr: '+447700900789'}\n"
        + "groups:\n"
        + "  pair: [alice, carol]\n"
        + "  ops: {}\n"
    )
    assert problems_of(text) == [
        "t.yaml:8: contacts.dan.slack: U0ALICE is also contact 'carol'",
        "t.yaml:9: contacts.erin: needs a number, a slack user ID, or both",
        "t.yaml:10: contacts.fay: needs a number, a slack user ID, or both",
        "t.yaml:10: contacts.fay.numbr: unknown key 'numbr' (did you mean 'number'?)",
        "t.yaml:12: groups.pair[1]: contact 'carol' has no number in the file; a listed group "
        "needs numbers (a slack_group group reads its members' numbers when it is texted)",
        "t.yaml:13: groups.ops: missing slack_group (or write the group as a list)",
    ]


def test_check_config_summary_names_the_slack_links() -> None:
    summary = summarize(load_policy_text(LINKED))
    assert "Slack profile phones used" in summary
    assert "contacts (3): alice (U0ALICE), bob, dan (W0DAN)" in summary
    assert "groups (2): db-oncall (Slack user group S0DBONCALL), pair (2 members)" in summary
