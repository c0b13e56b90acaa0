"""2Chat's per-minute budget as a pure rule: given the last minute's calls, may one more start?

2Chat limits an account to ``requests_per_minute`` calls (every call, reads included; 80 on
paid plans, 30 on trials) and answers 429 beyond it. Every process of one deployment spends
the same budget, so the rule reads a log of the calls made (kept in memory by a lone process,
in the database when several share one) and says how long the next call must wait.

Who goes first is decided by ``Priority``: page and escalation texts, then other texts, then
reply polls, then lookups. Polls and lookups may fill only ``spare_share`` of a minute while
nothing more urgent waits, so a page that comes next finds the rest free; polls keep a
``floor_share`` even while texts wait, so the replies to a long page (its acks, its STOPs) are
read while it goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from bot.core.model import POLL_FLOOR_SHARE, POLL_SHARE

WINDOW_SECONDS = 60.0
# A call counts against the window a little longer than 2Chat's minute: the moment it
# reaches 2Chat differs from the moment it was granted by network and scheduling jitter, so a
# start granted exactly a minute after another may reach 2Chat a few ms inside its minute.
COUNTED_SECONDS = WINDOW_SECONDS + 1.0
DEFAULT_BURST = 5
# The lowest limit 2Chat has (trial accounts): the pace until the account's own is read, so
# the read itself, and what starts beside it, never overruns any plan.
FALLBACK_PER_MINUTE = 30


class Priority(IntEnum):
    """Who gets the next 2Chat call, most urgent first."""

    PAGE = 0  # channel pages and escalation tiers, and reading the account's own limit
    SEND = 1  # every other text
    POLL = 2  # reading replies (with their floor)
    LOOKUP = 3  # ``/sms status``: a person can wait, or be told 2Chat was not asked


@dataclass(frozen=True)
class BudgetRule:
    """The account's limit and how it is shared out. ``from_account``: the limit is what
    2Chat says the account has (not the policy's), so the latest reading any process
    sharing the budget made of it replaces ``per_minute``."""

    per_minute: int
    burst: int = DEFAULT_BURST
    spare_share: float = POLL_SHARE  # polls and lookups, while nothing more urgent waits
    floor_share: float = POLL_FLOOR_SHARE  # polls, while texts wait
    from_account: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.per_minute, bool) or self.per_minute < 1:
            raise ValueError(f"per_minute must be a positive integer, not {self.per_minute!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")
        if not 0 < self.spare_share <= 1:
            raise ValueError(f"spare_share must be in (0, 1], not {self.spare_share}")
        if not 0 < self.floor_share <= self.spare_share:
            raise ValueError(f"floor_share must be in (0, spare_share], not {self.floor_share}")

    @property
    def spare(self) -> int:
        """The most calls in a minute after which a poll or lookup no longer starts."""
        return max(1, int(self.per_minute * self.spare_share))

    @property
    def floor(self) -> int:
        """The polls a minute that go ahead even while texts wait."""
        return max(1, int(self.per_minute * self.floor_share))

    @property
    def floor_spacing(self) -> float:
        """Seconds between two polls that go ahead of waiting texts: the floor, spread
        evenly, so it never holds up a page for more than one call at a time."""
        return WINDOW_SECONDS / self.floor

    @property
    def spacing(self) -> float:
        """Seconds between calls at the limit's pace, once a burst is spent."""
        return WINDOW_SECONDS / self.per_minute


class Grant(NamedTuple):
    """A ledger's answer: seconds to wait (0: the call was recorded and may start), and the
    limit it was judged by (another process's newer reading of the account's, perhaps)."""

    wait: float
    per_minute: int


# One call made: (when, in seconds on the log's clock; what it was for).
Call = tuple[float, Priority]


def wait_needed(
    calls: Sequence[Call], now: float, priority: Priority, rule: BudgetRule, *, floor: bool
) -> float:
    """Seconds until a call of ``priority`` may start at ``now`` (0: now), given the calls
    made (any order; older than a minute ignored). ``floor``: a poll taking its guaranteed
    share while texts wait (the pacer counts that share; one process polls), so the spare
    limit does not apply to it."""
    recent = sorted(at for at, _ in calls if now - at < COUNTED_SECONDS)
    cap = rule.per_minute if priority <= Priority.SEND or floor else rule.spare
    wait = _until_fewer(recent, now, cap, COUNTED_SECONDS)
    return max(wait, _until_paced(recent, now, rule))


def _until_paced(times: Sequence[float], now: float, rule: BudgetRule) -> float:
    """Seconds until the calls ``times`` (sorted) leave room for one more at an even pace:
    a token bucket of ``burst`` refilled at the limit's rate, told from the log alone (its
    generic cell rate form: each call moves the theoretical arrival time on by ``spacing``)."""
    due = float("-inf")
    for at in times:
        due = max(due, at) + rule.spacing
    tolerance = (min(rule.burst, rule.per_minute) - 1) * rule.spacing
    return max(due - tolerance - now, 0.0)


def _until_fewer(times: Sequence[float], now: float, cap: int, span: float) -> float:
    """Seconds until fewer than ``cap`` of ``times`` (sorted) lie within ``span`` of now."""
    inside = [at for at in times if now - at < span]
    if len(inside) < cap:
        return 0.0
    # The call ``cap`` back must leave the span before another may begin.
    return max(span - (now - inside[-cap]), 1e-6)
