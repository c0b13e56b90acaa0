"""Durations past ten years are refused where the policy is checked: such a value used to
pass, then break the app (a retention cutoff before year 1 stopped the sweeper, a tier
due after year 9999 dropped its ladder, an approval deadline as well)."""

from __future__ import annotations

import pytest

from bot.config import load_policy_text
from tests.config.helpers import BASE, problems_of
from tests.escalation.test_policy import LADDER, SENDERS

TOO_LONG = "too long a duration: at most 3650d (10 years)"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("retention:\n  keep: 3000000d\n", "retention.keep"),
        (
            "approvals:\n  approvers: [U0ADMIN]\n  expire_after: 99999999999s\n",
            "approvals.expire_after",
        ),
        ("replies:\n  poll_interval: 1m\n  window: 4000d\n", "replies.window"),
        (SENDERS + LADDER.replace("wait: 5m", "wait: 999999999d"), "escalations.db.tiers[0].wait"),
        (
            SENDERS + LADDER.replace("wait: 0.5s", "wait: 99999999999.5s"),
            "escalations.db.tiers[1].wait",
        ),
    ],
)
def test_a_duration_past_ten_years_is_refused(section: str, key: str) -> None:
    problems = problems_of(BASE + section)
    assert any(key in p and TOO_LONG in p for p in problems), problems


def test_ten_years_is_still_allowed() -> None:
    policy = load_policy_text(BASE + "retention:\n  keep: 3650d\n")
    assert policy.retention.keep.days == 3650
