"""The ``retention`` section, and what check-config says about retention and polling cost."""

from __future__ import annotations

from datetime import timedelta

from bot.config import load_policy_text, summarize
from tests.config.helpers import BASE, problems_of


def test_history_is_kept_90_days_unless_set() -> None:
    assert load_policy_text(BASE).retention.keep == timedelta(days=90)
    policy = load_policy_text(BASE + "retention:\n  keep: 400d\n")
    assert policy.retention.keep == timedelta(days=400)
    assert "purged after 400d" in summarize(policy)


def test_keep_is_checked_where_it_is_written() -> None:
    assert problems_of(BASE + "retention:\n  keep: 2h\n") == [
        "t.yaml:8: retention.keep: must be at least 1d"
    ]
    assert problems_of(BASE + "retention:\n  keep: soon\n")[0].startswith(
        "t.yaml:8: retention.keep: "
    )
    assert problems_of(BASE + "retention:\n  forever: true\n")[0].startswith(
        "t.yaml:8: retention.forever: "
    )


def test_keep_covers_the_reply_window() -> None:
    text = BASE + "replies:\n  poll_interval: 30s\n  window: 14d\nretention:\n  keep: 7d\n"
    assert problems_of(text) == [
        "t.yaml:11: retention.keep: must be at least replies.window (14d), or replies to the "
        "oldest sends could no longer be matched to them"
    ]


def test_polling_cost_counts_against_the_shared_per_minute_budget() -> None:
    numbers = "".join(f"  n{i}: '+1713715753{i}'\n" for i in range(4))
    text = BASE.replace('  main: "+17137157533"\n', numbers + '  main: "+17137157533"\n')
    fits = summarize(
        load_policy_text(
            text + "limits:\n  requests_per_minute: 60\nreplies:\n  poll_interval: 30s\n"
        )
    )
    assert "polls wait behind sends and use at most 30 of the 60 calls a minute;" in fits
    late = summarize(
        load_policy_text(
            text + "limits:\n  requests_per_minute: 60\nreplies:\n  poll_interval: 5s\n"
        )
    )
    assert "(polling 5 from_numbers needs 60 a minute, so polls run late)" in late
    unknown = summarize(load_policy_text(text + "replies:\n  poll_interval: 30s\n"))
    assert "use at most 50% of 2Chat's per-minute limit" in unknown
