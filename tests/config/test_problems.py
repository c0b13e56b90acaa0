"""Every kind of mistake in a policy file is reported as "file:line: key: why", all of them
in one ConfigError, in the order they appear in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_policy
from bot.errors import ConfigError
from tests.config.helpers import BASE, problems_of
from tests.conftest import SHIPPED_CONFIG

SHIPPED_TEXT = SHIPPED_CONFIG.read_text(encoding="utf-8")


def test_unknown_top_level_key_with_suggestion() -> None:
    assert problems_of(BASE + "contcts: {}\n") == [
        "t.yaml:7: contcts: unknown key 'contcts' (did you mean 'contacts'?)",
    ]


def test_unknown_top_level_key_without_suggestion_lists_known_keys() -> None:
    [problem] = problems_of(BASE + "surprise: true\n")
    assert problem.startswith("t.yaml:7: surprise: unknown key 'surprise' (known keys: version,")


def test_unknown_nested_key_with_suggestion() -> None:
    assert problems_of(BASE + "defaults:\n  max_segmnts: 3\n") == [
        "t.yaml:8: defaults.max_segmnts: unknown key 'max_segmnts' (did you mean 'max_segments'?)",
    ]


def test_unknown_contact_in_group() -> None:
    assert problems_of(BASE + "groups:\n  db-oncall: [alice, bobb]\n") == [
        "t.yaml:8: groups.db-oncall[1]: unknown contact 'bobb' "
        "(not a contact, and not a phone number; did you mean 'bob'?)",
    ]


def test_default_from_that_is_no_from_number() -> None:
    assert problems_of(BASE + "defaults:\n  region: GB\n  from: mian\n") == [
        "t.yaml:9: defaults.from: 'mian' is not a from_number (did you mean 'main'?)",
    ]


def test_invalid_contact_number() -> None:
    assert problems_of(BASE.replace('"+447700900456"', '"+44 12"')) == [
        "t.yaml:6: contacts.bob: '+44 12' is not a valid phone number",
    ]


def test_invalid_number_in_senders_to() -> None:
    text = BASE + "senders:\n  - users: [U0DEV1]\n    to:\n      - alice\n      - '+4412345'\n"
    assert problems_of(text) == [
        "t.yaml:11: senders[0].to[1]: '+4412345' is not a valid phone number",
    ]


def test_malformed_number_pattern_in_senders_to() -> None:
    text = BASE + "senders:\n  - users: [U0DEV1]\n    to: ['44*']\n"
    assert problems_of(text) == [
        "t.yaml:9: senders[0].to[0]: '44*' is not a number pattern: write '+', digits, "
        "then '*' (e.g. '+44*')",
    ]


def test_bad_duration() -> None:
    text = BASE + "approvals:\n  approvers: [U0LEAD]\n  expire_after: 10 minutes\n"
    assert problems_of(text) == [
        "t.yaml:9: approvals.expire_after: '10 minutes' is not a duration "
        "(use e.g. 30s, 10m, 2h, 1d or 1h30m)",
    ]


def test_bad_regex_carries_re_message() -> None:
    text = (
        BASE + "groups: {g: [alice]}\nchannels:\n  C0INC:\n    page: g\n    auto_page:\n"
        "      match: '(SEV1'\n"
    )
    assert problems_of(text) == [
        "t.yaml:12: channels.C0INC.auto_page.match: invalid regular expression: "
        "missing ), unterminated subpattern at position 0",
    ]


def test_page_must_name_a_group_or_contact() -> None:
    text = BASE + "channels:\n  C0INC:\n    page: db-oncal\n"
    [problem] = problems_of(text)
    assert problem == (
        "t.yaml:9: channels.C0INC.page: 'db-oncal' is not a group or a contact "
        "(groups and contacts: alice, bob)"
    )


def test_wrong_type_string_where_a_list_is_expected() -> None:
    text = BASE + "groups:\n  db-oncall: alice\nsenders:\n  users: [U0DEV1]\n"
    assert problems_of(text) == [
        "t.yaml:8: groups.db-oncall: expected a list, got the string 'alice'",
        "t.yaml:10: senders: expected a list, got a mapping",
    ]


def test_wrong_scalar_types_are_located() -> None:
    text = (
        BASE + "defaults:\n  max_segments: true\n  mask_numbers: 'no'\nlimits:\n"
        "  per_sender_per_hour: 0\n"
    )
    assert problems_of(text) == [
        "t.yaml:8: defaults.max_segments: expected a whole number of at least 1, "
        "got the boolean true",
        "t.yaml:9: defaults.mask_numbers: expected true or false, got the string 'no'",
        "t.yaml:11: limits.per_sender_per_hour: expected a whole number of at least 1, "
        "got the number 0",
    ]


def test_user_in_two_senders_entries_names_both_places() -> None:
    text = (
        BASE + "senders:\n  - users: [U0DEV1]\n    to: [alice]\n"
        "  - users: [U0DEV2, U0DEV1]\n    to: ['*']\n"
    )
    assert problems_of(text) == [
        "t.yaml:10: senders[1].users[1]: user U0DEV1 is also listed at senders[0].users[0] "
        "(line 8); a user may appear in only one senders entry",
    ]


def test_malformed_slack_ids() -> None:
    text = BASE + "senders:\n  - users: [bob]\n    to: ['*']\napprovals:\n  channel: '#ops'\n"
    assert problems_of(text) == [
        "t.yaml:8: senders[0].users[0]: 'bob' is not a Slack user ID (like U0123ABCD) "
        "or user group ID (like S0123ABCD)",
        "t.yaml:11: approvals.channel: '#ops' is not a Slack channel ID (like C0123ABCD)",
    ]


def test_approval_required_needs_an_approver() -> None:
    text = BASE + "senders:\n  - users: [U0INTERN]\n    to: ['*']\n    approval: required\n"
    assert problems_of(text) == [
        "t.yaml:10: senders[0].approval: approval is required but approvals.approvers lists nobody",
    ]


def test_name_both_contact_and_group() -> None:
    assert problems_of(BASE + "groups:\n  alice: [bob]\n") == [
        "t.yaml:8: groups.alice: 'alice' is both a contact and a group; rename one of them",
    ]


def test_duplicate_key_is_not_silently_overwritten() -> None:
    assert problems_of(BASE + "  alice: '+447700900789'\n") == [
        "t.yaml:7: contacts.alice: duplicate key (first at line 5)",
    ]


@pytest.mark.parametrize("version", ["2", "'1'", "true", "1.0"])
def test_version_must_be_1(version: str) -> None:
    [problem] = problems_of(BASE.replace("version: 1", f"version: {version}"))
    assert problem.startswith("t.yaml:1: version: must be 1, got ")


def test_missing_version_and_from_numbers() -> None:
    assert problems_of("contacts:\n  alice: '+447700900123'\n") == [
        "t.yaml:1: version: missing (must be 1)",
        "t.yaml:1: from_numbers: missing (name: number of each SMS number)",
    ]


def test_yaml_syntax_error_has_its_line() -> None:
    [problem] = problems_of(BASE + "groups:\n  db-oncall: [alice, bob\nsenders: []\n")
    assert problem.startswith("t.yaml:9: YAML syntax error: ")


def test_empty_file() -> None:
    assert problems_of("# nothing yet\n") == [
        "t.yaml:1: (top level): the policy file is empty (it needs version and from_numbers)",
    ]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_policy(missing)
    assert caught.value.problems == [
        f"{missing}: cannot read the policy file: No such file or directory",
    ]


def test_file_errors_name_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "surprise: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(str(bad))
    assert caught.value.problems[0].startswith(f"{bad}:7: surprise: ")


def test_every_problem_is_reported_at_once() -> None:
    text = (
        SHIPPED_TEXT.replace("max_segments: 3", "max_segments: 0")
        .replace("db-oncall: [alice, bob]", "db-oncall: [alice, bobb]")
        .replace("expire_after: 30m", "expire_after: 30x")
        .replace("SEV1|CRITICAL", "SEV1|(CRITICAL")
        .replace("users: [U0INTERN]", "users: [U0DEV1]")
    )
    problems = problems_of(text)
    assert [problem.split(": ")[0] for problem in problems] == [
        "t.yaml:5",
        "t.yaml:15",
        "t.yaml:22",
        "t.yaml:28",
        "t.yaml:34",
    ]
    assert str(ConfigError(problems)).count("\n") == 4
