"""The one 2Chat budget of a deployment: every 2Chat call waits here for its turn.

2Chat answers 429 to an account that makes more than ``requests_per_minute`` calls in a
minute, and every call costs a credit, so texts, reply polls and lookups share one budget.
``RatePacer`` queues the calls of this process by ``Priority`` and asks a ``Ledger`` whether
the next may start: ``MemoryLedger`` for a lone process (SQLite), or a ledger in the shared
database (Postgres: ``Store.take_twochat_call``), so two processes together stay under the
limit instead of each spending all of it (and while that database cannot answer, no call
starts). The account's limit as 2Chat last reported it is shared the same way: when one
process reads a new one (a plan changed), every process paces by it from its next call on,
not only the one that read it.

When 2Chat answers 429 all the same (another client of the account, a lower limit than we
knew), every start waits: for ``Retry-After`` when 2Chat sends one, else a pause that grows
while 429s keep coming; and the limit is read again (``relearn``).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

from bot.core.budget import (
    COUNTED_SECONDS,
    DEFAULT_BURST,
    WINDOW_SECONDS,
    BudgetRule,
    Grant,
    Pace,
    Priority,
    cap_of,
    looked_back,
    starts_now,
)
from bot.core.model import POLL_FLOOR_SHARE, POLL_SHARE
from bot.errors import BridgeError

__all__ = ["WINDOW_SECONDS", "Ledger", "MemoryLedger", "Priority", "RatePacer", "SharedLedger"]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Ticket = tuple[Priority, int]  # a waiter: its priority, then its place in the order of arrival
Sleep = Callable[[float], Awaitable[object]]

# The longest pause after 429s without a Retry-After: 2Chat's window is a minute.
MAX_HOLD_SECONDS = WINDOW_SECONDS
# How long a start waits before asking a shared ledger's database again when it did not answer.
UNANSWERED_PAUSE = 1.0


class Ledger(Protocol):
    """The log of calls the budget is counted on, and the account's limit as last read."""

    async def take(
        self, priority: Priority, rule: BudgetRule, *, floor: bool, wanted: int = 1
    ) -> Grant:
        """Record up to ``wanted`` calls that may start now (a wait of 0); else say how long
        to wait."""

    async def learn(self, per_minute: int) -> None:
        """Keep the account's limit as 2Chat just reported it."""


class MemoryLedger:
    """The last minute's calls of this process: the whole budget when it is the only one."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._starts: deque[float] = deque()  # when the counted minute's calls started
        self._pace = Pace()

    async def take(
        self, priority: Priority, rule: BudgetRule, *, floor: bool, wanted: int = 1
    ) -> Grant:
        now = self._clock()
        starts = self._starts
        while starts and now - starts[0] >= COUNTED_SECONDS:
            starts.popleft()
        cap = cap_of(rule, priority, floor=floor)
        backs = [
            now if back <= 0 else starts[-back] if back <= len(starts) else None
            for back in looked_back(cap, wanted)
        ]
        wait, granted = starts_now(now, rule, self._pace, backs)
        if granted:
            starts.extend([now] * granted)
            self._pace = self._pace.after_calls(now, rule, granted)
        return Grant(wait, rule.per_minute, granted)

    async def learn(self, per_minute: int) -> None:
        """Nothing to share: the pacer holds the limit this process read."""


class SharedLedger:
    """The log kept in a database every process uses (``Store.take_twochat_call``, run by
    ``take``; ``Store.learn_twochat_limit``, run by ``learn``): one budget for the
    deployment, not one per process.

    While the database cannot answer, no call starts; the start is asked for again after
    ``UNANSWERED_PAUSE``. Meanwhile no process knows what the others spend: each pacing
    alone by its own log spent a whole minute, together a multiple of it, and the calls
    they made were missing from the shared log once it answered again, so the minute after
    went over too (429s). Little waits that could have gone: a text's claim and a reply's
    record need the database as well."""

    def __init__(
        self,
        take: Callable[[Priority, BudgetRule, bool, int], Awaitable[Grant]],
        learn: Callable[[int], Awaitable[None]],
    ) -> None:
        self._take = take
        self._learn = learn
        self._unanswered = False  # the last take found the database down (logged once)

    async def take(
        self, priority: Priority, rule: BudgetRule, *, floor: bool, wanted: int = 1
    ) -> Grant:
        try:
            grant = await self._take(priority, rule, floor, wanted)
        except BridgeError as exc:
            if not self._unanswered:
                logger.warning(
                    "2Chat budget: the database did not answer; no 2Chat call starts until "
                    "it does: %s",
                    exc,
                )
            self._unanswered = True
            return Grant(UNANSWERED_PAUSE, rule.per_minute, 0)
        if self._unanswered:
            self._unanswered = False
            logger.info("2Chat budget: the database answers again; 2Chat calls resume")
        return grant

    async def learn(self, per_minute: int) -> None:
        try:
            await self._learn(per_minute)
        except BridgeError as exc:
            logger.warning("2Chat budget: could not share the limit read from 2Chat: %s", exc)


class RatePacer:
    """Hands out 2Chat call starts by priority, under the account's per-minute limit.

    The most urgent waiter (lowest ``Priority``, then first come) asks the ledger for a
    start, and when it is a text, for the texts queued behind it too (up to a full bucket):
    a look at a shared ledger is a database transaction. The others wait for it. While
    texts wait, the first poll goes ahead of them once every ``floor_spacing`` seconds (a
    tenth of the limit, spread evenly).
    ``per_minute=None`` means unlimited: acquire waits only while a 429 holds every start.
    ``from_account``: the limit stands in for the account's until 2Chat's is read
    (``learn``), and follows any newer reading the ledger holds.
    """

    def __init__(
        self,
        per_minute: int | None,
        *,
        from_account: bool = False,
        burst: int = DEFAULT_BURST,
        spare_share: float = POLL_SHARE,
        floor_share: float = POLL_FLOOR_SHARE,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        ledger: Ledger | None = None,
        relearn: Callable[[], object] | None = None,
    ) -> None:
        """``relearn`` is called when 2Chat says the budget is not what we thought (429,
        402), to read the account's limit again."""
        self._shape = BudgetRule(1, burst, spare_share, floor_share)  # checks them now
        self._rule: BudgetRule | None = None
        self._changed = asyncio.Event()  # set when the limit changes: every waiter re-checks
        self._turns: dict[Ticket, asyncio.Event] = {}  # each waiter's own wake-up
        self._handed: set[Ticket] = set()  # waiters whose start the head took for them
        self.set_rate(per_minute, from_account=from_account)
        self._clock = clock
        self._sleep = sleep
        self._ledger = ledger or MemoryLedger(clock)
        self._queue: list[Ticket] = []
        self._order = itertools.count()
        self._lock = asyncio.Lock()
        self._held_until = 0.0
        self._floor_at = float("-inf")  # when a poll last went ahead of waiting texts
        self._last_head: Ticket | None = None
        self._refusals = 0
        self._relearn = relearn

    def __repr__(self) -> str:
        return f"RatePacer(per_minute={self.per_minute!r}, burst={self._shape.burst})"

    @property
    def per_minute(self) -> int | None:
        """The current limit, or None when unlimited."""
        return self._rule.per_minute if self._rule else None

    @property
    def sends_waiting(self) -> int:
        """How many texts wait for a start right now (a metric)."""
        return sum(1 for priority, _ in self._queue if priority <= Priority.SEND)

    def set_rate(self, per_minute: int | None, *, from_account: bool = False) -> None:
        """Change the limit at run time (the policy's, or with ``from_account`` one that
        stands in for the account's until it is read). Calls already made count against
        the new limit; waiters re-check at once."""
        if per_minute is not None and (isinstance(per_minute, bool) or per_minute < 1):
            raise ValueError(f"per_minute must be a positive integer or None, not {per_minute!r}")
        shape = self._shape
        self._rule = None
        if per_minute is not None:
            self._rule = BudgetRule(
                per_minute, shape.burst, shape.spare_share, shape.floor_share, from_account
            )
        self._wake_all()

    async def learn(self, per_minute: int) -> None:
        """Pace by the account's limit as GET /open/info just reported it, and share it
        through the ledger first, so a start taken meanwhile by the old reading cannot
        bring the old limit back."""
        await self._ledger.learn(per_minute)
        self.set_rate(per_minute, from_account=True)
        logger.info("pacing 2Chat calls under %d per minute", per_minute)

    def heard(self, status: int, retry_after: float | None = None) -> None:
        """What 2Chat answered a call: a 429 holds every start (for ``retry_after`` if
        given, else longer at each 429 in a row) and, like a 402, asks for the limit anew."""
        if status == 429:
            self._refusals += 1
            if retry_after is None:
                spacing = WINDOW_SECONDS / (self.per_minute or 60)
                retry_after = min(MAX_HOLD_SECONDS, spacing * 2 ** min(self._refusals, 10))
            self._held_until = max(self._held_until, self._clock() + retry_after)
        elif 200 <= status < 300:
            self._refusals = 0
        if status in (402, 429) and self._relearn is not None:
            self._relearn()

    async def acquire(self, priority: Priority = Priority.SEND) -> None:
        """Wait for a start; it is spent when this returns."""
        if self._rule is None:
            while (held := self._held_until - self._clock()) > 0:  # after a 429, even so
                await self._pause(held, self._changed)
            return
        ticket = (priority, next(self._order))
        turn = self._turns[ticket] = asyncio.Event()
        bisect.insort(self._queue, ticket)
        self._wake()  # a less urgent waiter at the head steps back
        try:
            while self._rule is not None:
                rule = self._rule
                turn.clear()  # a change from here on wakes this waiter's pause at once
                if self._was_handed(ticket):
                    return
                wait: float | None = None
                head = self._head(rule)
                if head != self._last_head:  # the floor freed up or filled: tell the new head
                    self._last_head = head
                    self._wake()
                if head != ticket and ticket[0] == Priority.POLL:
                    wait = self._floor_wait(rule) or None  # a poll's floor may come first
                elif head == ticket:
                    wait = self._held_until - self._clock()
                    if wait <= 0:
                        # A poll ahead of waiting texts, or one whose floor has come: the
                        # floor holds also while a finished page's calls fill the minute.
                        floor = self._queue[0] != ticket or (
                            priority == Priority.POLL and self._floor_wait(rule) <= 0
                        )
                        # Texts queued behind a text at the head start with it, in one look
                        # at the ledger, as far as the pace allows.
                        wanted = 1 if floor else 1 + len(self._texts_behind(rule, ticket))
                        async with self._lock:
                            if self._was_handed(ticket):  # while it waited for the lock
                                return
                            wait, per_minute, starts = await self._ledger.take(
                                priority, rule, floor=floor, wanted=wanted
                            )
                        self._follow(rule, per_minute)
                        if wait <= 0:
                            if floor:
                                self._floor_at = self._clock()
                            self._hand_on(ticket, starts - 1, rule)
                            return
                        if priority == Priority.POLL and not floor:  # until its floor comes
                            wait = min(wait, self._floor_wait(rule))
                await self._pause(wait, turn)
        finally:
            self._queue.remove(ticket)
            del self._turns[ticket]
            self._handed.discard(ticket)
            self._wake()

    def _was_handed(self, ticket: Ticket) -> bool:
        """Whether the head took this waiter's start with its own (it may go now)."""
        if ticket not in self._handed:
            return False
        self._handed.discard(ticket)
        return True

    def _texts_behind(self, rule: BudgetRule, ticket: Ticket) -> list[Ticket]:
        """The texts waiting behind ``ticket`` (a text at the head) that may start with it:
        first come first, not already handed a start, no more than a full bucket."""
        if ticket[0] > Priority.SEND:
            return []
        texts = bisect.bisect_left(self._queue, (Priority.POLL, -1))
        queued = itertools.islice(self._queue, texts)  # not a copy: the queue may be long
        behind = (t for t in queued if t != ticket and t not in self._handed)
        return list(itertools.islice(behind, min(rule.burst, rule.per_minute) - 1))

    def _hand_on(self, ticket: Ticket, starts: int, rule: BudgetRule) -> None:
        """Give ``starts`` more starts the ledger granted with ``ticket``'s to the texts
        behind it (a waiter gone meanwhile leaves its start unused: counted, never overrun)."""
        for behind in self._texts_behind(rule, ticket)[: max(starts, 0)]:
            self._handed.add(behind)
            self._turns[behind].set()

    def _follow(self, rule: BudgetRule, per_minute: int) -> None:
        """Pace by the account's limit as another process read it, unless the policy
        sets the limit or the rule changed meanwhile."""
        if rule.from_account and per_minute != rule.per_minute and rule is self._rule:
            self.set_rate(per_minute, from_account=True)
            logger.info(
                "pacing 2Chat calls under %d per minute, as another process read it", per_minute
            )

    def _head(self, rule: BudgetRule) -> Ticket:
        """Who asks for the next start: the most urgent waiter, except that while texts
        wait, the first poll goes ahead of them once every ``floor_spacing`` (only the
        process holding the poller lease polls, so its own floor is the deployment's)."""
        first = self._queue[0]
        if first[0] > Priority.SEND:
            return first
        poll = next(self._polls(), None)
        if poll is None:
            return first
        return poll if self._floor_wait(rule) <= 0 else first

    def _polls(self) -> Iterator[Ticket]:
        """The waiting polls, first come first. The queue is sorted, so they are found by
        bisection: a scan of every waiting text at every change cost a long queue its
        square."""
        at = bisect.bisect_left(self._queue, (Priority.POLL, -1))
        while at < len(self._queue) and self._queue[at][0] == Priority.POLL:
            yield self._queue[at]
            at += 1

    def _floor_wait(self, rule: BudgetRule) -> float:
        """Seconds until a poll may go ahead of waiting texts again (0: now)."""
        return max(0.0, self._floor_at + rule.floor_spacing - self._clock())

    def _wake(self) -> None:
        """Make the waiters whose turn may have come re-check now: the head, and every poll
        (its floor may put it first). The others pause until they are the head: waking all
        of them at each start cost a queue of n texts n² wake-ups."""
        rule = self._rule
        if rule is None:
            self._wake_all()
            return
        if self._queue:
            self._turns[self._head(rule)].set()
        for poll in self._polls():
            self._turns[poll].set()

    def _wake_all(self) -> None:
        """Make every pausing waiter re-check now: the limit changed."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for turn in self._turns.values():
            turn.set()

    async def _pause(self, delay: float | None, woken: asyncio.Event) -> None:
        """Sleep ``delay`` seconds (None: until woken), or less if ``woken`` is set
        meanwhile."""
        waker = asyncio.ensure_future(woken.wait())
        if delay is None:
            try:
                await waker
            finally:
                waker.cancel()
            return
        sleeper = asyncio.ensure_future(self._sleep(max(delay, 1e-6)))
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()  # surface a failing sleep instead of spinning on it
