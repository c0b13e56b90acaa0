"""The task runner lets Slack's answers go first: work spawned to start
``Start.AFTER_ANSWERS`` waits while a Slack request is being answered, but never longer than
the runner's limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from bot.tasks import IN_TURN_AT_MOST, Start, TaskRunner, in_turn_wait_for_lease


async def started(runner: TaskRunner, start: Start) -> asyncio.Event:
    """Spawn work that only records that it ran; let the loop go round a few times."""
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    runner.spawn(work(), name="work", start=start)
    for _ in range(5):
        await asyncio.sleep(0)
    return ran


async def test_work_after_answers_waits_until_no_answer_is_due() -> None:
    runner = TaskRunner(answers_first_for=60)
    with runner.answering(), runner.answering():
        held = await started(runner, Start.AFTER_ANSWERS)
        plain = await started(runner, Start.AT_ONCE)
        assert plain.is_set()
        assert not held.is_set()
    await asyncio.wait_for(held.wait(), 5)
    assert await runner.drain(5)


async def test_work_after_answers_is_held_back_only_so_long() -> None:
    runner = TaskRunner(answers_first_for=0.05)
    with runner.answering():
        held = await started(runner, Start.AFTER_ANSWERS)
        assert not held.is_set()
        await asyncio.wait_for(held.wait(), 5)  # still answering: the limit let it start


async def test_work_after_answers_starts_at_once_when_nothing_was_answered() -> None:
    runner = TaskRunner(answers_first_for=60)
    assert (await started(runner, Start.AFTER_ANSWERS)).is_set()


async def test_work_after_answers_waits_out_a_short_gap_between_answers() -> None:
    """Answers given together are followed at once by the next requests of a burst: a gap
    shorter than ``quiet_for`` does not let the held work start ahead of them."""
    runner = TaskRunner(answers_first_for=60, quiet_for=0.2)
    with runner.answering():
        held = await started(runner, Start.AFTER_ANSWERS)
    await asyncio.sleep(0.05)  # the gap
    with runner.answering():
        await asyncio.sleep(0.3)  # longer than quiet_for, counted from the first answer
        assert not held.is_set()
    await asyncio.wait_for(held.wait(), 5)  # quiet_for after the last answer


async def test_a_failed_answer_still_lets_the_work_start() -> None:
    runner = TaskRunner(answers_first_for=60)
    try:
        with runner.answering():
            held = await started(runner, Start.AFTER_ANSWERS)
            raise RuntimeError("the listener failed")
    except RuntimeError:
        pass
    await asyncio.wait_for(held.wait(), 5)


def in_turn(at_once: int, place_for: float, in_turn_at_most: float) -> TaskRunner:
    """A runner whose held work is soon free of the quiet wait (10 ms)."""
    return TaskRunner(
        answers_first_for=60,
        quiet_for=0.01,
        at_once=at_once,
        place_for=place_for,
        in_turn_at_most=in_turn_at_most,
    )


@asynccontextmanager
async def blocked(runner: TaskRunner) -> AsyncIterator[Callable[..., list[int]]]:
    """A spawner of held tasks, each noting when it starts and then blocked until the block
    ends; they then finish, and the runner drains."""
    finish = asyncio.Event()

    def spawn(count: int, start: Start = Start.IN_TURN) -> list[int]:
        begun: list[int] = []

        async def work(number: int) -> None:
            begun.append(number)
            await finish.wait()

        with runner.answering():
            for number in range(count):
                runner.spawn(work(number), name=f"work-{number}", start=start)
        return begun

    yield spawn
    finish.set()
    assert await runner.drain(5)


async def test_work_in_turn_runs_only_so_many_at_once() -> None:
    """A burst's held sends start a few at a time, not all that were acked, so the acks
    still coming are not queued behind them."""
    runner = in_turn(at_once=2, place_for=60, in_turn_at_most=60)
    async with blocked(runner) as spawn:
        begun = spawn(5)
        await asyncio.sleep(0.1)  # quiet since long enough: the held work may start
        assert begun == [0, 1]
    assert begun == [0, 1, 2, 3, 4]


async def test_held_pages_take_no_place() -> None:
    async with blocked(in_turn(at_once=1, place_for=60, in_turn_at_most=60)) as spawn:
        sends, pages = spawn(2), spawn(2, Start.AFTER_ANSWERS)
        await asyncio.sleep(0.1)
        assert (sends, pages) == ([0], [0, 1])


async def test_work_in_turn_that_runs_long_gives_up_its_place() -> None:
    """A send waiting on 2Chat keeps its place a moment only."""
    async with blocked(in_turn(at_once=1, place_for=0.05, in_turn_at_most=60)) as spawn:
        begun = spawn(2)
        await asyncio.wait_for(_until(lambda: begun == [0, 1]), 5)  # the first still runs


async def test_work_not_held_back_takes_no_place() -> None:
    runner = in_turn(at_once=1, place_for=60, in_turn_at_most=60)
    async with blocked(runner) as spawn:
        spawn(1)
        await asyncio.sleep(0.1)  # the held task runs and keeps the only place
        assert (await started(runner, Start.AFTER_ANSWERS)).is_set()


@pytest.mark.parametrize(("at_most", "begun_in_time"), [(60, [0]), (0.1, [0, 1])])
async def test_work_in_turn_waits_for_a_place_only_so_long(
    at_most: float, begun_in_time: list[int]
) -> None:
    """In a long overload every place stays taken; work in turn still starts, well inside
    the lease its request was recorded under, rather than waiting for the sweeper."""
    async with blocked(in_turn(at_once=1, place_for=60, in_turn_at_most=at_most)) as spawn:
        begun = spawn(2)
        await asyncio.sleep(0.3)
        assert begun == begun_in_time


def test_work_in_turn_starts_well_inside_its_lease() -> None:
    assert in_turn_wait_for_lease(2.4) == pytest.approx(0.8)  # TWOCHAT_*_TIMEOUT of 0.2 s each
    assert in_turn_wait_for_lease(22.0) == IN_TURN_AT_MOST  # the defaults: 5 s + 15 s + 2 s


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)
