"""The policy files shipped in ``config/`` load, and the main one means what its comments say."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_policy, summarize
from bot.core.model import Policy, Recipient, SenderRule
from tests.conftest import ROOT, SHIPPED_CONFIG

EXAMPLES = sorted((ROOT / "config").glob("*.y*ml"))


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(SHIPPED_CONFIG)


def test_the_shipped_policy_is_among_the_examples() -> None:
    assert SHIPPED_CONFIG in EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_policy_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.source == str(path)
    assert policy.from_numbers


def test_shipped_config_defaults_and_numbers(shipped: Policy) -> None:
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


def test_the_oncall_example_summary_shows_its_ladder_and_what_fast_polling_costs() -> None:
    from bot.config import load_policy, summarize

    summary = summarize(load_policy(ROOT / "config" / "oncall-example.yaml"))
    assert "escalation db: db-oncall (5m) -> db-leads (10m); repeat 1; used in C0INCIDENT" in (
        summary
    )
    assert "every 15s (up to 240 credits an hour per from_number, only then)" in summary
