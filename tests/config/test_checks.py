"""check-config catches what would only fail later: recipients 2Chat can never text, one
number under two names, misspelt names wherever a name is used, and tabs in the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_policy, load_policy_text
from tests.config.helpers import BASE, problems_of
from tests.conftest import SHIPPED_CONFIG
from tests.test_cli import run

US_REFUSAL = "2Chat does not support A2P messaging to US numbers"
ONE_NUMBER = "one of them is probably meant to be another number"


# Recipients 2Chat can never text: an error, with the reason.


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+12025550123", US_REFUSAL),
        ("+17875550123", "to Puerto Rico numbers (Puerto Rico is a US territory"),
        ("+16715550123", "to Guam numbers (Guam is a US territory"),
        ("+18005550123", "to toll-free numbers (+1 800 is a North American toll-free code)"),
    ],
)
def test_contact_that_can_never_be_texted(number: str, reason: str) -> None:
    [problem] = problems_of(BASE.replace('"+447700900456"', f'"{number}"'))
    assert problem.startswith(f"t.yaml:6: contacts.bob: {number} can never be texted: ")
    assert reason in problem


def test_refusal_names_the_normalised_number_of_a_contact_written_nationally() -> None:
    text = BASE.replace('"+447700900456"', '"(202) 555-0123"') + "defaults:\n  region: US\n"
    assert problems_of(text) == [
        f"t.yaml:6: contacts.bob: +12025550123 can never be texted: {US_REFUSAL}",
    ]


def test_canadian_contact_shares_plus_one_but_is_not_refused() -> None:
    policy = load_policy_text(BASE.replace('"+447700900456"', '"+14165550123"'), "t.yaml")
    assert policy.contacts["bob"] == "+14165550123"


def test_from_numbers_are_not_destinations_so_a_us_one_is_fine() -> None:
    policy = load_policy_text(BASE, "t.yaml")
    assert policy.from_numbers == {"main": "+17137157533"}
    assert policy.warnings == ()


def test_group_member_number_that_can_never_be_texted() -> None:
    assert problems_of(BASE + "groups:\n  g: [alice, '+12025550123']\n") == [
        f"t.yaml:8: groups.g[1]: +12025550123 can never be texted: {US_REFUSAL}",
    ]


def test_refused_contact_is_reported_once_not_again_where_a_group_uses_it() -> None:
    text = BASE.replace('"+447700900456"', '"+12025550123"') + "groups:\n  g: [alice, bob]\n"
    assert problems_of(text) == [
        f"t.yaml:6: contacts.bob: +12025550123 can never be texted: {US_REFUSAL}",
    ]


# One number under two names: a warning, naming both entries and both lines.


def test_two_contacts_sharing_a_number_written_differently() -> None:
    policy = load_policy_text(BASE + "  carol: '07700 900123'\n", "t.yaml")
    assert policy.warnings == (
        "t.yaml:7: contacts.carol: same number as contacts.alice (line 5): +447700900123; "
        f"{ONE_NUMBER}",
    )
    assert policy.contacts["carol"] == policy.contacts["alice"]


def test_every_later_sharer_points_at_the_first() -> None:
    text = BASE.replace('"+447700900456"', '"+447700900123"') + "  carol: '+447700900123'\n"
    warnings = load_policy_text(text, "t.yaml").warnings
    assert [warning.split(": same number as ")[0] for warning in warnings] == [
        "t.yaml:6: contacts.bob",
        "t.yaml:7: contacts.carol",
    ]
    assert all("contacts.alice (line 5)" in warning for warning in warnings)


def test_two_from_numbers_sharing_a_number() -> None:
    text = BASE.replace(
        '  main: "+17137157533"\n', '  main: "+17137157533"\n  uk: "+17137157533"\n'
    )
    assert load_policy_text(text, "t.yaml").warnings == (
        "t.yaml:4: from_numbers.uk: same number as from_numbers.main (line 3): +17137157533; "
        f"{ONE_NUMBER}",
    )


def test_a_warning_does_not_hide_errors() -> None:
    text = BASE + "  carol: '+447700900123'\n  dave: 'nope'\n"
    assert problems_of(text) == ["t.yaml:8: contacts.dave: 'nope' is not a phone number"]


def test_the_shipped_policy_has_no_warnings() -> None:
    assert load_policy(SHIPPED_CONFIG).warnings == ()


# A misspelt name gets a suggestion wherever a name is used.


def test_misspelt_group_member() -> None:
    assert problems_of(BASE + "groups:\n  g: [alcie]\n") == [
        "t.yaml:8: groups.g[0]: unknown contact 'alcie' "
        "(not a contact, and not a phone number; did you mean 'alice'?)",
    ]


def test_group_member_never_suggests_a_group_which_cannot_be_a_member() -> None:
    text = BASE + "groups:\n  db-oncall: [alice]\n  g: [db-oncal]\n"
    assert problems_of(text) == [
        "t.yaml:9: groups.g[0]: unknown contact 'db-oncal' (not a contact, and not a phone number)",
    ]


@pytest.mark.parametrize(("typed", "meant"), [("alcie", "alice"), ("db-oncal", "db-oncall")])
def test_misspelt_senders_to_suggests_contacts_and_groups(typed: str, meant: str) -> None:
    text = (
        BASE + f"groups:\n  db-oncall: [alice]\nsenders:\n  - users: [U0DEV1]\n    to: [{typed}]\n"
    )
    assert problems_of(text) == [
        f"t.yaml:11: senders[0].to[0]: unknown recipient {typed!r} (not a contact, a group, "
        f"a phone number, a '+<digits>*' pattern or '*'; did you mean {meant!r}?)",
    ]


def test_senders_to_far_from_every_name_has_no_suggestion() -> None:
    text = BASE + "senders:\n  - users: [U0DEV1]\n    to: [zzzz]\n"
    assert problems_of(text) == [
        "t.yaml:9: senders[0].to[0]: unknown recipient 'zzzz' (not a contact, a group, "
        "a phone number, a '+<digits>*' pattern or '*')",
    ]


@pytest.mark.parametrize(("typed", "meant"), [("alcie", "alice"), ("db-oncal", "db-oncall")])
def test_misspelt_channel_page_suggests_contacts_and_groups(typed: str, meant: str) -> None:
    text = BASE + f"groups:\n  db-oncall: [alice]\nchannels:\n  C0INC:\n    page: {typed}\n"
    [problem] = problems_of(text)
    assert problem.startswith("t.yaml:11: channels.C0INC.page: ")
    assert problem.endswith(f"(did you mean {meant!r}?)")


# Tabs: a plain message instead of PyYAML's scanner error.


TABBED = BASE + "\tcarol: '+34600000001'\n"


def test_tab_indentation_is_named_with_its_line() -> None:
    assert problems_of(TABBED) == ["t.yaml:7: tabs are not allowed in YAML; indent with spaces"]


def test_tab_after_a_value_is_named_with_its_line() -> None:
    text = BASE.replace('bob: "+447700900456"', 'bob:\t"+447700900456"')
    assert problems_of(text) == ["t.yaml:6: tabs are not allowed in YAML; indent with spaces"]


def test_tabs_yaml_allows_still_load() -> None:
    text = (
        BASE + "# a comment\twith a tab\ngroups: {g: [alice]}\nchannels:\n  C0INC:\n"
        "    page: g\n    auto_page:\n      match: 'SEV1\tdown'\n"
    )
    auto_page = load_policy_text(text, "t.yaml").channels["C0INC"].auto_page
    assert auto_page is not None
    assert auto_page.match.pattern == "SEV1\tdown"


def test_other_yaml_syntax_errors_keep_their_message() -> None:
    [problem] = problems_of(BASE + "groups: [\n")
    assert problem.startswith("t.yaml:8: YAML syntax error: ")


# What check-config prints.


@pytest.mark.app
def test_check_config_prints_warnings_under_ok_and_still_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(BASE + "  carol: '+447700900123'\n", encoding="utf-8")
    result = run("check-config", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"OK: {path}",
        f"warning: {path}:7: contacts.carol: same number as contacts.alice (line 5): "
        f"+447700900123; {ONE_NUMBER}",
    ]
    assert lines[2].startswith("defaults: ")
    assert run("check-config", "--strict", str(path)).returncode == 1


@pytest.mark.app
def test_check_config_without_warnings_prints_none() -> None:
    result = run("check-config", str(SHIPPED_CONFIG))
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stdout


@pytest.mark.app
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TABBED, ":7: tabs are not allowed in YAML; indent with spaces"),
        (
            BASE.replace('"+447700900456"', '"+12025550123"'),
            f":6: contacts.bob: +12025550123 can never be texted: {US_REFUSAL}",
        ),
    ],
    ids=["tab", "refused-contact"],
)
def test_check_config_fails_on_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    result = run("check-config", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"{path}{expected}"]
    assert result.stdout == ""
