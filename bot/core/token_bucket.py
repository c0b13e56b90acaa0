"""A token bucket: a burst at once, then an even pace, so calls stay under a per-minute limit.

Pure: the caller passes the time and sleeps for the delay it is given. ``per_minute`` calls
fit in any minute: ``burst`` of them at once, the rest one every
``60 / (per_minute - burst)`` seconds. A rate limiter that counts calls in a sliding
minute (the strictest reading of a per-minute tier) then never refuses one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Hands out starts: ``reserve(now)`` is how long to wait before the next call."""

    per_minute: float
    burst: int
    _tokens: float = field(init=False)
    _at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_minute <= self.burst:
            raise ValueError(
                f"a bucket needs 1 <= burst < per_minute, not {self.burst} and {self.per_minute:g}"
            )
        self._tokens = float(self.burst)

    @property
    def refill_per_second(self) -> float:
        return (self.per_minute - self.burst) / 60.0

    def reserve(self, now: float) -> float:
        """Take the next start; the seconds to wait for it (0 while the burst lasts). Each
        call reserves its own start, so callers that wait their delays go in turn."""
        if self._at is not None:
            elapsed = max(0.0, now - self._at)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.refill_per_second)
        self._at = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.refill_per_second
