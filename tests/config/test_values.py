"""What a valid policy file reads as: numbers normalised to E.164, groups without repeats,
and the defaults filled in."""

from __future__ import annotations

from bot.config import load_policy_text
from bot.core.model import Recipient
from tests.config.helpers import BASE


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
