"""Fan-out: bounded concurrency, process-wide pacing under 2Chat's per-minute limit, safe retries.

Time is faked wherever it matters: the pacer and the backoff take an injected clock and sleep,
so minutes of pacing run in milliseconds and every assertion is deterministic.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import TwoChatError
from bot.sms.budget import Priority, RatePacer
from bot.sms.fanout import RetryPolicy, fan_out


class FakeTime:
    """A clock that only moves when someone sleeps on it; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


class ManualSleep:
    """A sleep that blocks until the test lets it go, to observe a waiter mid-wait."""

    def __init__(self) -> None:
        self.requested: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.requested.append(delay)
        await asyncio.Event().wait()  # never set: only cancellation ends it


class CountingPacer(RatePacer):
    """An unlimited pacer that counts acquisitions and logs them into a shared event list."""

    def __init__(self, events: list[str] | None = None) -> None:
        super().__init__(None)
        self.acquired = 0
        self.events = events

    async def acquire(self, priority: Priority = Priority.SEND) -> None:
        self.acquired += 1
        if self.events is not None:
            self.events.append("acquire")
        await super().acquire(priority)


def temporary(status: int = 429) -> TwoChatError:
    return TwoChatError(f"2Chat answered {status}", status=status, temporary=True)


def assert_window_cap(starts: Sequence[float], per_minute: int) -> None:
    """No 60 s window [t, t+60) holds more than ``per_minute`` of the sorted ``starts``."""
    for first, later in zip(starts, starts[per_minute:], strict=False):
        assert later - first >= 60.0, f"{per_minute + 1} starts within {later - first:.6f} s"


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


# --- RatePacer ----------------------------------------------------------------------------


async def acquire_times(pacer: RatePacer, fake: FakeTime, count: int) -> list[float]:
    times: list[float] = []
    for _ in range(count):
        await pacer.acquire()
        times.append(fake.now)
    return times


@pytest.mark.parametrize("burst", [1, 5])
@pytest.mark.parametrize("per_minute", [60, 80, 30])
async def test_pacer_holds_the_cap_in_every_window_and_reaches_it(
    per_minute: int, burst: int
) -> None:
    fake = FakeTime()
    pacer = RatePacer(per_minute, burst=burst, clock=fake.clock, sleep=fake.sleep)

    starts = await acquire_times(pacer, fake, 10 * per_minute)

    assert_window_cap(starts, per_minute)
    achieved = (len(starts) - 1) / (starts[-1] - starts[0]) * 60.0
    assert per_minute * 0.95 <= achieved <= per_minute * 1.05


async def test_pacer_spreads_starts_evenly_after_the_burst() -> None:
    fake = FakeTime()
    pacer = RatePacer(60, burst=3, clock=fake.clock, sleep=fake.sleep)

    starts = await acquire_times(pacer, fake, 30)

    assert starts[:3] == [1000.0] * 3  # the burst goes at once
    gaps = [later - first for first, later in itertools.pairwise(starts[2:])]
    assert all(gap == pytest.approx(1.0, abs=1e-5) for gap in gaps)


async def test_pacer_serves_concurrent_waiters_within_the_cap() -> None:
    fake = FakeTime()
    pacer = RatePacer(60, burst=5, clock=fake.clock, sleep=fake.sleep)
    starts: list[float] = []

    async def one() -> None:
        await pacer.acquire()
        starts.append(fake.now)

    await asyncio.gather(*(one() for _ in range(250)))

    assert len(starts) == 250
    assert starts == sorted(starts)
    assert_window_cap(starts, 60)


async def test_unlimited_pacer_never_sleeps() -> None:
    fake = FakeTime()
    pacer = RatePacer(None, clock=fake.clock, sleep=fake.sleep)

    await acquire_times(pacer, fake, 1000)

    assert fake.sleeps == []
    assert fake.now == 1000.0


async def test_set_rate_changes_the_pace() -> None:
    fake = FakeTime()
    pacer = RatePacer(60, burst=1, clock=fake.clock, sleep=fake.sleep)
    await pacer.acquire()
    await pacer.acquire()
    assert fake.now == pytest.approx(1001.0)

    # One start per 10 s. The starts made at the old pace still count: the last one left a
    # call owed, which the new pace pays off in 10 s (not the old 1 s).
    pacer.set_rate(6)
    assert pacer.per_minute == 6
    await pacer.acquire()
    assert fake.now == pytest.approx(1011.0, abs=1e-5)
    await pacer.acquire()
    assert fake.now == pytest.approx(1021.0, abs=1e-5)

    pacer.set_rate(None)
    before = fake.now
    await acquire_times(pacer, fake, 100)
    assert fake.now == before

    pacer.set_rate(60)  # back from unlimited: paced again, from what the minute held
    fake.now += 60
    starts = await acquire_times(pacer, fake, 5)
    assert starts[0] == before + 60
    assert starts[-1] - starts[0] == pytest.approx(4.0, abs=1e-4)


async def test_set_rate_wakes_a_waiter_instead_of_sleeping_out_the_old_wait() -> None:
    manual = ManualSleep()
    pacer = RatePacer(1, burst=1, sleep=manual)
    await pacer.acquire()
    waiter = asyncio.create_task(pacer.acquire())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiter.done()
    assert manual.requested[-1] > 50  # about a minute at 1 per minute

    pacer.set_rate(None)

    await asyncio.wait_for(waiter, timeout=1.0)


async def test_cancelled_waiter_does_not_block_the_next() -> None:
    manual = ManualSleep()
    pacer = RatePacer(1, burst=1, sleep=manual)
    await pacer.acquire()
    waiter = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    pacer.set_rate(None)
    await asyncio.wait_for(pacer.acquire(), timeout=1.0)


def test_invalid_pacer_and_policy_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RatePacer(0)
    with pytest.raises(ValueError):
        RatePacer(60, burst=0)
    with pytest.raises(ValueError):
        RatePacer(60).set_rate(-5)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_minute=st.integers(min_value=1, max_value=120),
    burst=st.integers(min_value=1, max_value=10),
    count=st.integers(min_value=1, max_value=300),
)
def test_pacer_cap_holds_for_any_rate_and_burst(per_minute: int, burst: int, count: int) -> None:
    async def scenario() -> list[float]:
        fake = FakeTime(start=12345.678)
        pacer = RatePacer(per_minute, burst=burst, clock=fake.clock, sleep=fake.sleep)
        return await acquire_times(pacer, fake, count)

    starts = asyncio.run(scenario())

    assert len(starts) == count
    assert_window_cap(starts, per_minute)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_minute=st.integers(min_value=1, max_value=90),
    burst=st.integers(min_value=1, max_value=8),
    start=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    idle=st.lists(st.floats(min_value=0.0, max_value=3.0, allow_nan=False), max_size=200),
)
def test_pacer_cap_holds_with_idle_gaps_and_any_clock_origin(
    per_minute: int, burst: int, start: float, idle: list[float]
) -> None:
    """Callers that pause between acquisitions, at any clock magnitude (float rounding)."""

    async def scenario() -> list[float]:
        fake = FakeTime(start=start)
        pacer = RatePacer(per_minute, burst=burst, clock=fake.clock, sleep=fake.sleep)
        starts: list[float] = []
        for pause in idle:
            fake.now += pause
            await pacer.acquire()
            starts.append(fake.now)
        return starts

    assert_window_cap(asyncio.run(scenario()), per_minute)


# --- RetryPolicy ---------------------------------------------------------------------------


def test_backoff_ceilings_double_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=8, base_delay=0.5, max_delay=8.0)

    assert [policy.ceiling(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert policy.ceiling(10_000) == 8.0


def test_backoff_delays_are_jittered_within_bounds_and_grow_on_average() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=8.0)
    rng = random.Random(7)

    samples = {n: [policy.delay(n, rng) for _ in range(2000)] for n in range(5)}

    for n, delays in samples.items():
        assert all(0.0 <= delay <= policy.ceiling(n) for delay in delays)
        assert len(set(delays)) > 1900  # jittered, not a fixed schedule
    means = [sum(delays) / len(delays) for delays in samples.values()]
    assert means == sorted(means)
    for n, mean in enumerate(means):
        assert mean == pytest.approx(policy.ceiling(n) / 2, rel=0.1)


async def test_fan_out_backoff_uses_the_seeded_rng_and_injected_sleep() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=3.0)
    fake = FakeTime()

    async def always_busy(item: int) -> str:
        raise temporary(503)

    await fan_out(
        [1],
        always_busy,
        concurrency=1,
        pacer=RatePacer(None),
        retry=policy,
        rng=random.Random(42),
        sleep=fake.sleep,
    )

    expected_rng = random.Random(42)
    expected = [expected_rng.uniform(0.0, min(3.0, 0.5 * 2**n)) for n in range(4)]
    assert fake.sleeps == expected
    assert all(0.0 <= d <= policy.ceiling(n) for n, d in enumerate(fake.sleeps))


# --- fan_out -------------------------------------------------------------------------------


async def test_concurrency_bound_is_reached_but_never_exceeded_and_order_is_kept() -> None:
    in_flight = 0
    most = 0

    async def call(item: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(item % 5 + 1):  # uneven durations: completion order differs from input
            await asyncio.sleep(0)
        in_flight -= 1
        return item * 10

    items = list(range(50))
    results = await fan_out(items, call, concurrency=7, pacer=RatePacer(None), retry=RetryPolicy())

    assert most == 7
    assert in_flight == 0
    assert results == [item * 10 for item in items]


async def test_empty_input_returns_empty_without_calling() -> None:
    async def call(item: int) -> int:
        raise AssertionError("not called")

    assert await fan_out([], call, concurrency=3, pacer=RatePacer(60), retry=RetryPolicy()) == []


async def test_invalid_concurrency_is_refused() -> None:
    async def call(item: int) -> int:
        return item

    with pytest.raises(ValueError):
        await fan_out([1], call, concurrency=0, pacer=RatePacer(None), retry=RetryPolicy())


async def test_429_twice_then_success_sends_exactly_once_per_item() -> None:
    calls: Counter[str] = Counter()
    successes: Counter[str] = Counter()
    events: list[str] = []
    pacer = CountingPacer(events)

    async def send(member: str) -> str:
        events.append("call")
        calls[member] += 1
        if calls[member] <= 2:
            raise temporary(429)
        successes[member] += 1
        return f"id-{member}"

    members = [f"m{n}" for n in range(12)]
    fake = FakeTime()
    results = await fan_out(
        members, send, concurrency=4, pacer=pacer, retry=RetryPolicy(), sleep=fake.sleep
    )

    assert results == [f"id-{m}" for m in members]
    assert calls == dict.fromkeys(members, 3)
    assert successes == dict.fromkeys(members, 1)
    assert pacer.acquired == 36
    # Every attempt, retries included, was preceded by its own pacer slot.
    assert events == ["acquire", "call"] * 36
    assert fake.sleeps == []  # a 429 waits in the pacer (which 2Chat's 429 holds), no backoff


async def test_429_is_retried_past_the_attempts_for_other_errors() -> None:
    """A 429 means "no budget now", not a failure: the call waits and goes, however many
    429s come first; other temporary errors still give up after ``attempts``."""
    answers = [temporary(429)] * 9 + ["id"]
    others = [temporary(503)] * 4

    async def send(item: str) -> str:
        answer = (answers if item == "page" else others).pop(0)
        if isinstance(answer, TwoChatError):
            raise answer
        return answer

    fake = FakeTime()
    results = await fan_out(
        ["page", "other"],
        send,
        concurrency=2,
        pacer=RatePacer(None),
        retry=RetryPolicy(),
        sleep=fake.sleep,
    )
    assert results[0] == "id"
    assert isinstance(results[1], TwoChatError) and results[1].status == 503


@pytest.mark.parametrize(
    "error",
    [
        TwoChatError("not E.164", status=422, temporary=False),
        TwoChatError("invalid API key", status=401, temporary=False),
        TwoChatError("credits exhausted", status=402, temporary=False),
        TwoChatError("Sending the request to 2Chat timed out; it may have been sent"),
        ValueError("a bug in the call"),
    ],
    ids=["422", "401", "402", "read-timeout", "other-exception"],
)
async def test_non_temporary_errors_are_not_retried(error: Exception) -> None:
    calls = 0
    fake = FakeTime()

    async def send(item: str) -> str:
        nonlocal calls
        calls += 1
        raise error

    results = await fan_out(
        ["x"], send, concurrency=1, pacer=RatePacer(None), retry=RetryPolicy(), sleep=fake.sleep
    )

    assert calls == 1
    assert results == [error]
    assert fake.sleeps == []


async def test_exhausting_attempts_returns_the_last_error() -> None:
    raised: list[TwoChatError] = []

    async def send(item: str) -> str:
        raised.append(temporary(503 if len(raised) % 2 else 504))
        raise raised[-1]

    results = await fan_out(
        ["x"],
        send,
        concurrency=1,
        pacer=RatePacer(None),
        retry=RetryPolicy(attempts=4),
        sleep=no_sleep,
    )

    assert len(raised) == 4
    assert results[0] is raised[-1]


async def test_a_temporary_error_then_a_permanent_one_stops_retrying() -> None:
    outcomes = [temporary(486), TwoChatError("forbidden", status=403), "never reached"]
    calls = 0

    async def send(item: str) -> str:
        nonlocal calls
        outcome = outcomes[calls]
        calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    results = await fan_out(
        ["x"], send, concurrency=1, pacer=RatePacer(None), retry=RetryPolicy(), sleep=no_sleep
    )

    assert calls == 2
    assert results == [outcomes[1]]


@pytest.mark.parametrize("seed", [1, 2, 3])  # seed 1 once caught `start + 60` rounding down
async def test_retries_are_paced_under_the_cap(seed: int) -> None:
    fake = FakeTime()
    pacer = RatePacer(60, burst=5, clock=fake.clock, sleep=fake.sleep)
    starts: list[float] = []
    calls: Counter[int] = Counter()

    async def send(item: int) -> int:
        starts.append(fake.now)
        calls[item] += 1
        if calls[item] == 1:
            raise temporary(429)
        return item

    items = list(range(100))
    results = await fan_out(
        items,
        send,
        concurrency=10,
        pacer=pacer,
        retry=RetryPolicy(),
        rng=random.Random(seed),
        sleep=fake.sleep,
    )

    assert results == items
    assert len(starts) == 200
    assert_window_cap(sorted(starts), 60)


async def test_on_result_is_called_once_per_item_with_its_result() -> None:
    seen: list[tuple[int, str, object]] = []
    boom = TwoChatError("forbidden", status=403)

    async def send(item: str) -> str:
        if item == "bad":
            raise boom
        return item.upper()

    async def on_result(index: int, item: str, result: str | BaseException) -> None:
        seen.append((index, item, result))

    items = ["a", "bad", "c", "d"]
    results = await fan_out(
        items,
        send,
        concurrency=2,
        pacer=RatePacer(None),
        retry=RetryPolicy(),
        on_result=on_result,
    )

    assert results == ["A", boom, "C", "D"]
    assert sorted(seen, key=lambda entry: entry[0]) == [
        (0, "a", "A"),
        (1, "bad", boom),
        (2, "c", "C"),
        (3, "d", "D"),
    ]


async def test_on_result_runs_as_items_finish_not_at_the_end() -> None:
    slow_may_finish = asyncio.Event()

    async def send(item: str) -> str:
        if item == "slow":
            await slow_may_finish.wait()
        return item

    async def on_result(index: int, item: str, result: str | BaseException) -> None:
        if item == "fast":
            slow_may_finish.set()  # only possible if reported before "slow" is done

    results = await asyncio.wait_for(
        fan_out(
            ["slow", "fast"],
            send,
            concurrency=2,
            pacer=RatePacer(None),
            retry=RetryPolicy(),
            on_result=on_result,
        ),
        timeout=2.0,
    )

    assert results == ["slow", "fast"]


async def test_on_result_calls_never_overlap_and_never_hold_up_sends() -> None:
    active = 0
    overlapped = False
    release = asyncio.Event()
    sent: list[int] = []

    async def send(item: int) -> int:
        sent.append(item)
        if len(sent) == 10:
            release.set()  # every send happened while the first report was still blocked
        return item

    async def on_result(index: int, item: int, result: int | BaseException) -> None:
        nonlocal active, overlapped
        active += 1
        overlapped = overlapped or active > 1
        await release.wait()
        await asyncio.sleep(0)
        active -= 1

    results = await asyncio.wait_for(
        fan_out(
            list(range(10)),
            send,
            concurrency=3,
            pacer=RatePacer(None),
            retry=RetryPolicy(),
            on_result=on_result,
        ),
        timeout=2.0,
    )

    assert results == list(range(10))
    assert not overlapped


async def test_a_failing_on_result_does_not_stop_the_fan_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reported: list[int] = []

    async def send(item: int) -> int:
        return item

    async def on_result(index: int, item: int, result: int | BaseException) -> None:
        reported.append(index)
        if index == 0:
            raise RuntimeError("Slack update failed")

    results = await fan_out(
        [0, 1, 2],
        send,
        concurrency=1,
        pacer=RatePacer(None),
        retry=RetryPolicy(),
        on_result=on_result,
    )

    assert results == [0, 1, 2]
    assert sorted(reported) == [0, 1, 2]
    assert "on_result failed" in caplog.text


async def test_cancellation_propagates_and_cancels_calls_in_flight() -> None:
    started = 0
    cancelled = 0
    all_started = asyncio.Event()

    async def send(item: int) -> int:
        nonlocal started, cancelled
        started += 1
        if started == 3:
            all_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return item

    task = asyncio.create_task(
        fan_out(list(range(10)), send, concurrency=3, pacer=RatePacer(None), retry=RetryPolicy())
    )
    await asyncio.wait_for(all_started.wait(), timeout=1.0)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert started == 3
    assert cancelled == 3


async def test_cancellation_during_backoff_propagates() -> None:
    calls = 0

    async def send(item: int) -> int:
        nonlocal calls
        calls += 1
        raise temporary(503)

    task = asyncio.create_task(
        fan_out(
            [1],
            send,
            concurrency=1,
            pacer=RatePacer(None),
            retry=RetryPolicy(base_delay=60.0, max_delay=60.0),
            rng=random.Random(1),  # uniform(0, 60) with this seed is far from 0
        )
    )
    while calls == 0:
        await asyncio.sleep(0)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1


OUTCOMES = st.sampled_from(["ok", "temporary", "permanent", "other"])


@settings(max_examples=150, deadline=None)
@given(
    plans=st.lists(st.lists(OUTCOMES, min_size=1, max_size=8), min_size=0, max_size=25),
    attempts=st.integers(min_value=1, max_value=5),
    concurrency=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_every_item_gets_exactly_one_final_result_within_the_attempt_budget(
    plans: list[list[str]], attempts: int, concurrency: int, seed: int
) -> None:
    """Whatever each attempt answers, each item ends once, after at most ``attempts`` calls."""
    calls: Counter[int] = Counter()
    raised: dict[tuple[int, int], BaseException] = {}
    reports: Counter[int] = Counter()
    report_values: dict[int, object] = {}

    async def call(index: int) -> str:
        attempt = calls[index]
        calls[index] += 1
        plan = plans[index]
        outcome = plan[min(attempt, len(plan) - 1)]
        await asyncio.sleep(0)
        if outcome == "ok":
            return f"ok-{index}-{attempt}"
        error: Exception
        if outcome == "temporary":  # a 429 is not limited by attempts: see above
            error = temporary(503)
        elif outcome == "permanent":
            error = TwoChatError("refused", status=422)
        else:
            error = KeyError(index)
        raised[(index, attempt)] = error
        raise error

    async def on_result(index: int, item: int, result: str | BaseException) -> None:
        reports[index] += 1
        report_values[index] = result

    async def scenario() -> list[str | BaseException]:
        return await fan_out(
            list(range(len(plans))),
            call,
            concurrency=concurrency,
            pacer=RatePacer(None),
            retry=RetryPolicy(attempts=attempts),
            on_result=on_result,
            rng=random.Random(seed),
            sleep=no_sleep,
        )

    results = asyncio.run(scenario())

    assert len(results) == len(plans)
    for index, plan in enumerate(plans):
        padded = [plan[min(n, len(plan) - 1)] for n in range(attempts)]
        final = next(
            (n for n, outcome in enumerate(padded) if outcome != "temporary"), attempts - 1
        )
        assert calls[index] == final + 1 <= attempts
        assert reports[index] == 1
        assert report_values[index] is results[index]
        if padded[final] == "ok":
            assert results[index] == f"ok-{index}-{final}"
        else:
            assert results[index] is raised[(index, final)]


# --- with the real event loop ----------------------------------------------------------------


async def test_real_loop_100_items_at_concurrency_20_take_about_5_rounds() -> None:
    in_flight = 0
    most = 0

    async def call(item: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return item

    started = time.perf_counter()
    results = await fan_out(
        list(range(100)), call, concurrency=20, pacer=RatePacer(None), retry=RetryPolicy()
    )
    elapsed = time.perf_counter() - started

    assert results == list(range(100))
    assert most == 20
    assert 0.045 <= elapsed < 0.5  # 5 rounds of 10 ms, not 100 sequential calls


async def test_real_loop_pacer_spaces_starts() -> None:
    pacer = RatePacer(6000, burst=1)  # 100 per second: one start every 10 ms
    started = time.perf_counter()
    for _ in range(6):
        await pacer.acquire()
    elapsed = time.perf_counter() - started

    assert 0.045 <= elapsed < 0.5
