"""The task runner lets Slack's answers go first: work spawned ``after_answers`` waits while a
Slack request is being answered, but never longer than the runner's limit."""

from __future__ import annotations

import asyncio

from bot.tasks import TaskRunner


async def started(runner: TaskRunner, *, after_answers: bool) -> asyncio.Event:
    """Spawn work that only records that it ran; let the loop go round a few times."""
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    runner.spawn(work(), name="work", after_answers=after_answers)
    for _ in range(5):
        await asyncio.sleep(0)
    return ran


async def test_work_after_answers_waits_until_no_answer_is_due() -> None:
    runner = TaskRunner(answers_first_for=60)
    with runner.answering(), runner.answering():
        held = await started(runner, after_answers=True)
        plain = await started(runner, after_answers=False)
        assert plain.is_set()
        assert not held.is_set()
    await asyncio.wait_for(held.wait(), 5)
    assert await runner.drain(5)


async def test_work_after_answers_is_held_back_only_so_long() -> None:
    runner = TaskRunner(answers_first_for=0.05)
    with runner.answering():
        held = await started(runner, after_answers=True)
        assert not held.is_set()
        await asyncio.wait_for(held.wait(), 5)  # still answering: the limit let it start


async def test_work_after_answers_starts_at_once_when_nothing_is_answered() -> None:
    runner = TaskRunner(answers_first_for=60)
    with runner.answering():
        pass
    assert (await started(runner, after_answers=True)).is_set()


async def test_a_failed_answer_still_lets_the_work_start() -> None:
    runner = TaskRunner(answers_first_for=60)
    try:
        with runner.answering():
            held = await started(runner, after_answers=True)
            raise RuntimeError("the listener failed")
    except RuntimeError:
        pass
    await asyncio.wait_for(held.wait(), 5)


async def test_a_quiet_moment_lets_held_work_go_one_at_a_time() -> None:
    """Between two Slack requests the loop may be idle for a turn: held work trickles out,
    and what a new request finds still held stays held."""
    runner = TaskRunner(answers_first_for=60)
    ran: list[int] = []

    async def work(n: int) -> None:
        ran.append(n)

    with runner.answering():
        for n in range(5):
            runner.spawn(work(n), name=f"work-{n}", after_answers=True)
        await asyncio.sleep(0)
    for _ in range(3):  # a few turns of quiet
        await asyncio.sleep(0)
    with runner.answering():  # the next request
        assert 0 < len(ran) < 5
        started = len(ran)
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(ran) <= started + 1 < 5  # only the one let go just before it
    assert await runner.drain(5)
    assert ran == [0, 1, 2, 3, 4]


async def test_work_let_go_by_its_time_limit_is_forgotten() -> None:
    runner = TaskRunner(answers_first_for=0.01)
    with runner.answering():
        for _ in range(3):
            await started(runner, after_answers=True)
        assert await runner.drain(5)
        assert not runner._held
