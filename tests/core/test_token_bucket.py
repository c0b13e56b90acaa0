"""The token bucket that paces Slack profile lookups: a burst, then an even pace, and never
more than ``per_minute`` calls in any minute."""

from __future__ import annotations

import pytest

from bot.core.token_bucket import TokenBucket


def starts(bucket: TokenBucket, calls: int, at: float = 0.0) -> list[float]:
    """When each of ``calls`` callers, all asking at ``at``, may start."""
    return [at + bucket.reserve(at) for _ in range(calls)]


def most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_the_burst_goes_at_once_and_the_rest_at_an_even_pace() -> None:
    bucket = TokenBucket(per_minute=100, burst=20)
    times = starts(bucket, 24)
    assert times[:20] == [0.0] * 20
    assert times[20:] == pytest.approx([0.75, 1.5, 2.25, 3.0])  # 80 a minute after the burst


@pytest.mark.parametrize("calls", [100, 300, 1000])
def test_no_minute_holds_more_than_the_limit(calls: int) -> None:
    times = starts(TokenBucket(per_minute=100, burst=20), calls)
    assert most_in_any_window(times, 60.0) <= 100


def test_a_quiet_spell_refills_the_burst_and_no_more() -> None:
    bucket = TokenBucket(per_minute=100, burst=20)
    starts(bucket, 20)
    later = starts(bucket, 21, at=3600.0)  # an hour later: a full burst, not 80 more
    assert later[:20] == [3600.0] * 20 and later[20] == pytest.approx(3600.75)


def test_a_bucket_that_cannot_pace_is_refused() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(per_minute=20, burst=20)
