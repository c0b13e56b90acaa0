"""2Chat's per-minute budget as a pure rule: given what the calls made so far left, may one
more start?

2Chat limits an account to ``requests_per_minute`` calls (every call, reads included; 80 on
paid plans, 30 on trials) and answers 429 beyond it. Every process of one deployment spends
the same budget, so the rule reads what a log of the calls made holds (kept in memory by a
lone process, in the database when several share one) and says how long the next call must
wait. It needs two facts, each as cheap to keep at 20,000 calls a minute as at 30: when the
call a minute's cap back started (calls are numbered, so that is one lookup), and the even
pace's debt (``Pace``).

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
    """A ledger's answer: seconds to wait (0: the calls were recorded and may start), the
    limit it was judged by (another process's newer reading of the account's, perhaps), and
    how many starts it recorded (up to the number asked for; 0 while there is a wait)."""

    wait: float
    per_minute: int
    starts: int = 1


class Pace(NamedTuple):
    """The even pace as a token bucket told as a debt: ``owed`` calls beyond an empty bucket
    at time ``at`` (seconds on the log's clock), paid off at the limit's rate. Counted in
    calls, not seconds, so a new limit simply pays the same debt off at its own rate."""

    owed: float = 0.0
    at: float = float("-inf")

    def owed_at(self, now: float, rule: BudgetRule) -> float:
        """The debt left at ``now`` (a clock that went back pays nothing off)."""
        return max(0.0, self.owed - max(0.0, now - self.at) / rule.spacing)

    def after_calls(self, now: float, rule: BudgetRule, count: int) -> Pace:
        """The pace once ``count`` more calls start at ``now``."""
        return Pace(self.owed_at(now, rule) + count, now)


def cap_of(rule: BudgetRule, priority: Priority, *, floor: bool) -> int:
    """The most calls a minute may hold when one of ``priority`` is to start: the limit
    for texts and for a poll taking its floor, the spare share for other polls and lookups.
    ``floor``: a poll taking its guaranteed share while texts wait (the pacer counts that
    share; one process polls)."""
    return rule.per_minute if priority <= Priority.SEND or floor else rule.spare


def looked_back(cap: int, wanted: int) -> range:
    """For each of ``wanted`` starts, how many calls back the cap looks: ``cap`` for the
    first, one fewer for each after (0 or less: one of the calls asked for now)."""
    return range(cap, cap - wanted, -1)


def starts_now(
    now: float, rule: BudgetRule, pace: Pace, backs: Sequence[float | None]
) -> tuple[float, int]:
    """How many calls may start at ``now``, and if none, how long until one may: (0, n)
    or (wait, 0). ``backs``: when the calls ``looked_back`` started (``now`` for one asked for
    now, None where fewer calls were made), one for each call wanted. The minute may hold no more
    than the cap, and the even pace no more than a full bucket at once. Both are O(1) to
    keep, whatever the rate: a ledger remembers the count of calls and each call's time by
    its number, and the pace as a debt. Several starts at once let the texts queued in a
    burst share one look at a shared ledger."""
    owed = pace.owed_at(now, rule)
    tolerance = min(rule.burst, rule.per_minute) - 1  # calls a full bucket holds beyond one
    granted = 0
    for back in backs:
        if back is not None and now - back < COUNTED_SECONDS:
            # That call must leave the counted minute before another may begin.
            wait = max(COUNTED_SECONDS - (now - back), 1e-6)
        else:
            wait = (owed + granted - tolerance) * rule.spacing
        if wait > 0:
            return (0.0, granted) if granted else (wait, 0)
        granted += 1
    return 0.0, granted
