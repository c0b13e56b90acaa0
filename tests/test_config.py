"""The policy file loader (SPEC §2): the shipped example loads, and every kind of mistake is
reported as "file:line: key: why" in one ConfigError."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config.loader import load_policy, load_policy_text, parse_duration, summarize
from bot.core.model import Policy, Recipient, SenderRule
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "bridge.yaml"
SHIPPED_TEXT = SHIPPED.read_text(encoding="utf-8")

# Six lines every error test builds on, so the expected line numbers can be read off.
BASE = """\
version: 1
from_numbers:
  main: "+17137157533"
contacts:
  alice: "+447700900123"
  bob: "+447700900456"
"""


def problems_of(text: str) -> list[str]:
    """The problems load_policy_text reports for ``text`` (it must refuse it)."""
    with pytest.raises(ConfigError) as caught:
        load_policy_text(text, "t.yaml")
    return caught.value.problems


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(SHIPPED)


def test_shipped_config_is_the_spec_example() -> None:
    spec = Path("/work/shared/SPEC.md")
    if not spec.exists():
        pytest.skip("the shared spec is not available here")
    example = spec.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    assert example == SHIPPED_TEXT


def test_shipped_config_defaults_and_numbers(shipped: Policy) -> None:
    assert shipped.source == str(SHIPPED)
    assert shipped.defaults.region == "GB"
    assert shipped.defaults.from_name == "main"
    assert shipped.defaults.max_segments == 3
    assert shipped.defaults.mask_numbers is False
    assert shipped.from_numbers == {"main": "+17137157533", "uk": "+442071838750"}
    assert shipped.contacts == {
        "alice": "+447700900123",
        "bob": "+447700900456",
        "carol": "+34600000001",
    }
    assert shipped.groups == {
        "db-oncall": (Recipient("+447700900123", "alice"), Recipient("+447700900456", "bob")),
    }


def test_shipped_config_senders_approvals_channels_limits(shipped: Policy) -> None:
    assert shipped.senders == (
        SenderRule(users=("U0ADMIN",), to=("*",)),
        SenderRule(
            users=("U0DEV1", "U0DEV2"),
            to=("db-oncall", "carol", "+447700900*"),
            from_names=("main",),
        ),
        SenderRule(users=("U0INTERN",), to=("*",), approval_required=True),
    )
    assert shipped.approvals.approvers == frozenset({"U0ADMIN", "U0LEAD"})
    assert shipped.approvals.channel == "C0APPROVALS"
    assert shipped.approvals.expire_after == timedelta(minutes=30)
    assert shipped.approvals.allow_self_approval is False
    rule = shipped.channels["C0INCIDENT"]
    assert rule.page == "db-oncall"
    assert rule.auto_page is not None
    assert rule.auto_page.match.search("SEV1 db down")
    assert rule.auto_page.match.search("critical: disk full")
    assert not rule.auto_page.match.search("sev10 is not a severity")
    assert rule.auto_page.dedupe_window == timedelta(minutes=10)
    assert shipped.limits.per_sender_per_hour == 30
    assert shipped.limits.per_recipient_per_hour == 10
    assert shipped.limits.requests_per_minute is None


def test_summary_names_what_the_file_allows(shipped: Policy) -> None:
    summary = summarize(shipped)
    for expected in (
        "from_numbers (2)",
        "main +17137157533",
        "contacts (3): alice, bob, carol",
        "db-oncall (2 members)",
        "3 entries, 4 users",
        "approval required for U0INTERN",
        "U0ADMIN, U0LEAD",
        "C0APPROVALS",
        "30m",
        "C0INCIDENT pages db-oncall",
        "per sender per hour 30",
    ):
        assert expected in summary
    assert len(summary.splitlines()) >= 5


def test_numbers_are_normalised_and_groups_deduplicated() -> None:
    policy = load_policy_text(
        BASE + "groups:\n  team: [alice, '07700 900123', '+34 600 000 002', bob]\n"
        "senders:\n  - users: [U0DEV1]\n    to: ['07700900999', '+44*']\n    approval: none\n",
        "t.yaml",
    )
    assert policy.groups["team"] == (
        Recipient("+447700900123", "alice"),
        Recipient("+34600000002", None),
        Recipient("+447700900456", "bob"),
    )
    assert policy.senders[0].to == ("+447700900999", "+44*")
    assert policy.senders[0].approval_required is False
    assert policy.senders[0].from_names is None


def test_default_from_is_main_else_the_first_from_number() -> None:
    first = load_policy_text(
        "version: 1\nfrom_numbers:\n  uk: '+442071838750'\n  es: '+34600000003'\n"
    )
    assert first.defaults.from_name == "uk"
    assert load_policy_text(BASE).defaults.from_name == "main"


def test_region_is_uppercased_and_used_for_national_numbers() -> None:
    policy = load_policy_text(
        "version: 1\ndefaults: {region: es}\nfrom_numbers: {m: '600000004'}\n"
    )
    assert policy.defaults.region == "ES"
    assert policy.from_numbers == {"m": "+34600000004"}


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
        "(not a contact, and not a phone number)",
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
        "t.yaml:8: senders[0].users[0]: 'bob' is not a Slack user ID (like U0123ABCD)",
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90", timedelta(seconds=90)),
        (" 45 ", timedelta(seconds=45)),
        (120, timedelta(minutes=2)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0m",
        "-5m",
        "-5",
        "",
        "m",
        "1.5h",
        "10 m",
        "10M",
        "1w",
        "h1",
        "99999999999999d",
        "9" * 5000,
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def _outcome(text: str) -> str:
    """Loading either succeeds or raises ConfigError; any other exception fails the test."""
    try:
        load_policy_text(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems
        assert all(problem.startswith("fuzz.yaml") for problem in exc.problems)
        return "refused"
    return "loaded"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text_never_crashes(text: str) -> None:
    assert _outcome(text) in ("loaded", "refused")


YAML_BITS = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "-",
        ":",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        "*",
        "&a",
        "*a",
        "!!int",
        "!!bool",
        "~",
        "null",
        "0",
        "-1",
        "true",
        "1h",
        "+44",
        "U0X",
        "C0X",
        "(",
        "\\",
        "#",
        "\t",
        "<<: *a",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_shipped_config_never_crashes(data: st.DataObject) -> None:
    text = SHIPPED_TEXT
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + data.draw(YAML_BITS) + text[end:]
    assert _outcome(text) in ("loaded", "refused")
