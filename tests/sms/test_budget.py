"""One 2Chat budget: reply polling goes through the same pacer as sends, and yields to them.

Time is simulated (an injected clock and sleep), so minutes of pacing run in milliseconds.
The stand-in for 2Chat here enforces the account's per-minute limit the way 2Chat does,
answering 429 to any call that would make more than ``per_minute`` in 60 seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from typing import Any

import pytest

from bot.core.budget import BudgetRule, Grant
from bot.errors import StoreError, TwoChatError
from bot.sms.budget import WINDOW_SECONDS, MemoryLedger, Priority, RatePacer, SharedLedger
from bot.sms.fanout import RetryPolicy, fan_out

CAP = 60
FROM_NUMBERS = 20


class SimulatedTime:
    """Virtual time shared by many tasks: once every task is waiting, the clock jumps to the
    earliest wake-up and wakes that sleeper."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._order), woken))
        await woken

    async def drive(self) -> None:
        """Run for ever: let every runnable task run, then move to the next wake-up."""
        while True:
            for _ in range(50):
                await asyncio.sleep(0)
            while self._sleepers:
                deadline, _, woken = heapq.heappop(self._sleepers)
                if not woken.done():
                    self.now = max(self.now, deadline)
                    woken.set_result(None)
                    break


class LimitedTwoChat:
    """Answers 429 to a call beyond ``per_minute`` in any 60 s; logs who called when."""

    def __init__(self, time: SimulatedTime, per_minute: int) -> None:
        self._time = time
        self._per_minute = per_minute
        self._recent: deque[float] = deque()
        self.calls: list[tuple[float, str]] = []
        self.refused = 0

    async def call(self, who: str) -> str:
        now = self._time.now
        while self._recent and now - self._recent[0] >= WINDOW_SECONDS:
            self._recent.popleft()
        if len(self._recent) >= self._per_minute:
            self.refused += 1
            raise TwoChatError("429 Too Many Requests", status=429, temporary=True)
        self._recent.append(now)
        self.calls.append((now, who))
        await asyncio.sleep(0)
        return who


async def poll_forever(pacer: RatePacer, twochat: LimitedTwoChat) -> None:
    """A reply poller with many from-numbers: one conversations call each, back to back."""
    while True:
        for index in range(FROM_NUMBERS):
            await pacer.acquire(Priority.POLL)
            await twochat.call(f"poll-{index}")


async def scenario(
    time: SimulatedTime, pacer: RatePacer, twochat: LimitedTwoChat, concurrency: int
) -> list[str]:
    """Poll for two minutes, page 100 people while polling goes on, poll a minute more."""
    driver = asyncio.create_task(time.drive())
    poller = asyncio.create_task(poll_forever(pacer, twochat))
    await time.sleep(120)
    results = await fan_out(
        [f"send-{i}" for i in range(100)],
        twochat.call,
        concurrency=concurrency,
        pacer=pacer,
        retry=RetryPolicy(attempts=1),
        sleep=time.sleep,
    )
    await time.sleep(60)
    poller.cancel()
    driver.cancel()
    return [str(result) for result in results]


def busiest_minute(calls: list[float]) -> int:
    return max(sum(1 for t in calls if start <= t < start + WINDOW_SECONDS) for start in calls)


def run(per_minute: int = CAP, concurrency: int = 10) -> tuple[list[str], LimitedTwoChat]:
    time = SimulatedTime()
    pacer = RatePacer(per_minute, clock=time.clock, sleep=time.sleep)
    twochat = LimitedTwoChat(time, per_minute)
    return asyncio.run(scenario(time, pacer, twochat, concurrency)), twochat


def test_polling_and_a_page_together_stay_under_the_cap_with_no_429() -> None:
    results, twochat = run()
    assert results == [f"send-{i}" for i in range(100)]  # every send got through, first try
    assert twochat.refused == 0
    assert busiest_minute([t for t, _ in twochat.calls]) <= CAP


@pytest.mark.parametrize("concurrency", [10, 100])
def test_while_the_page_is_sending_polls_get_only_their_floor(concurrency: int) -> None:
    """Replies to a long page (acks, STOP) are still read, at a tenth of the cap, however
    many of its texts wait (the app lets 100 wait at once): a poll does not queue behind
    them all."""
    _, twochat = run(concurrency=concurrency)
    sends = [t for t, who in twochat.calls if who.startswith("send")]
    polls = [t for t, who in twochat.calls if who.startswith("poll")]
    during = [t for t in polls if sends[0] < t < sends[-1]]
    assert sends[-1] - sends[0] > WINDOW_SECONDS  # the page outlasts a minute at the cap
    assert len(during) >= 2, "polling goes on during a long page"
    assert during[0] - sends[0] < 30, "the first poll came only after most texts"
    assert busiest_minute(during) <= CAP // 10
    assert [t for t in polls if t > sends[-1]], "polling resumes in full once the page is out"


def test_the_floor_is_checked() -> None:
    with pytest.raises(ValueError, match="floor_share"):
        RatePacer(60, spare_share=0.5, floor_share=0.6)


def test_polling_alone_uses_only_its_share_of_the_minute() -> None:
    """Half the minute, and the floor's polls on top (the floor holds at all times)."""
    _, twochat = run()
    first_send = next(t for t, who in twochat.calls if who.startswith("send"))
    polls = [t for t, who in twochat.calls if who.startswith("poll") and t < first_send]
    assert CAP // 2 <= busiest_minute(polls) <= CAP // 2 + CAP // 10


def test_a_page_after_busy_polling_starts_at_once() -> None:
    """The half of the minute polling leaves free is there for the page's first sends."""
    _, twochat = run()
    sends = [t for t, who in twochat.calls if who.startswith("send")]
    assert sends[0] == pytest.approx(1120.0, abs=1.0)
    # The burst, not one by one (one of its calls may be a poll taking its floor).
    assert sum(1 for t in sends if t < sends[0] + 1) >= 4


def test_no_call_starts_while_the_shared_budget_cannot_be_read_and_none_goes_over() -> None:
    """Two processes share one budget in a database that stops answering for 20 s while
    both text as fast as the budget lets them. Neither knows what the other spends
    meanwhile: each pacing alone by its own log spent a whole minute, together twice the
    account's limit, and 2Chat answered 429. No call starts while the database is down;
    once it answers, the texts go on from where the shared log left them."""
    time, texts = SimulatedTime(), 60
    twochat = LimitedTwoChat(time, CAP)
    database = MemoryLedger(time.clock)  # the shared log, as the database keeps it
    outage = (1010.0, 1030.0)
    looks_while_down = 0

    async def take(priority: Priority, rule: BudgetRule, floor: bool, wanted: int) -> Grant:
        nonlocal looks_while_down
        if outage[0] <= time.now < outage[1]:
            looks_while_down += 1
            raise StoreError("the database is unreachable")
        return await database.take(priority, rule, floor=floor, wanted=wanted)

    async def kept(per_minute: int) -> None:
        """Nothing to share in this test."""

    async def process(name: str) -> None:
        pacer = RatePacer(CAP, clock=time.clock, sleep=time.sleep, ledger=SharedLedger(take, kept))
        for index in range(texts):
            await pacer.acquire(Priority.SEND)
            await twochat.call(f"{name}-{index}")

    async def both() -> None:
        driver = asyncio.create_task(time.drive())
        await asyncio.gather(process("a"), process("b"))
        driver.cancel()

    asyncio.run(both())
    starts = [t for t, _ in twochat.calls]
    assert twochat.refused == 0
    assert len(starts) == 2 * texts  # every text went, once the database answered
    assert busiest_minute(starts) <= CAP
    assert not [t for t in starts if outage[0] <= t < outage[1]], "a call started blind"
    assert any(t < outage[0] for t in starts) and any(t >= outage[1] for t in starts)
    # Asked again about once a second per process while down, not in a busy loop.
    assert 2 <= looks_while_down <= 2 * (outage[1] - outage[0]) + 4


def test_a_long_queue_of_texts_starts_in_order_without_waking_every_waiter() -> None:
    """Each start wakes the next in line, not every waiter: waking all of them made a queue
    of n texts cost n² wake-ups (counted here as the tasks their pauses create)."""
    time, texts = SimulatedTime(), 200
    pacer = RatePacer(600, clock=time.clock, sleep=time.sleep)
    tasks = itertools.count()

    async def queue_of_texts() -> list[int]:
        loop = asyncio.get_running_loop()

        def counted(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            next(tasks)
            return asyncio.Task(coro, loop=loop, **kwargs)

        driver = asyncio.create_task(time.drive())
        started: list[int] = []

        async def text(index: int) -> None:
            await pacer.acquire(Priority.SEND)
            started.append(index)

        loop.set_task_factory(counted)
        await asyncio.gather(*(text(index) for index in range(texts)))
        loop.set_task_factory(None)
        driver.cancel()
        return started

    assert asyncio.run(queue_of_texts()) == list(range(texts))
    assert next(tasks) < 10 * texts


def test_polls_never_wait_longer_than_their_floor_even_just_after_a_page() -> None:
    """The floor holds whether or not texts still wait: right after a page, its texts
    fill the last minute past the spare share, and replies (an ack, a STOP) must still be
    read at the floor's pace, not once the page's calls have aged out of the minute."""
    _, twochat = run()
    polls = [t for t, who in twochat.calls if who.startswith("poll")]
    rule = BudgetRule(CAP)
    spacing = rule.floor_spacing + rule.spacing  # a text already starting goes first
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert max(gaps) <= spacing + 0.01, f"polls waited {max(gaps):.1f}s (at most {spacing}s)"


def test_texts_queued_behind_the_head_start_with_it_in_one_look_at_the_ledger() -> None:
    """Each look at a shared ledger is a database transaction under one lock, one at a time:
    a text at the head takes starts for the texts queued behind it too, as many as the pace
    allows (a full bucket), and they start in their order of arrival."""
    time, texts = SimulatedTime(), 20
    alone = MemoryLedger(time.clock)
    looks: list[int] = []

    async def take(priority: Priority, rule: BudgetRule, floor: bool, wanted: int) -> Grant:
        looks.append(wanted)
        await time.sleep(0.001)  # the database's round trip
        return await alone.take(priority, rule, floor=floor, wanted=wanted)

    async def kept(per_minute: int) -> None:
        """Nothing to share in this test."""

    ledger = SharedLedger(take, kept)
    pacer = RatePacer(1_000_000, burst=5, clock=time.clock, sleep=time.sleep, ledger=ledger)

    async def queue_of_texts() -> list[int]:
        driver = asyncio.create_task(time.drive())
        started: list[int] = []

        async def text(index: int) -> None:
            await pacer.acquire(Priority.SEND)
            started.append(index)

        await asyncio.gather(*(text(index) for index in range(texts)))
        driver.cancel()
        return started

    assert asyncio.run(queue_of_texts()) == list(range(texts))
    assert len(looks) <= texts // 5 + 1 and max(looks) == 5, looks
