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


async def test_work_after_answers_starts_at_once_when_nothing_was_answered() -> None:
    runner = TaskRunner(answers_first_for=60)
    assert (await started(runner, after_answers=True)).is_set()


async def test_work_after_answers_waits_out_a_short_gap_between_answers() -> None:
    """Answers given together are followed at once by the next requests of a burst: a gap
    shorter than ``quiet_for`` does not let the held work start ahead of them."""
    runner = TaskRunner(answers_first_for=60, quiet_for=0.2)
    with runner.answering():
        held = await started(runner, after_answers=True)
    await asyncio.sleep(0.05)  # the gap
    with runner.answering():
        await asyncio.sleep(0.3)  # longer than quiet_for, counted from the first answer
        assert not held.is_set()
    await asyncio.wait_for(held.wait(), 5)  # quiet_for after the last answer


async def test_a_failed_answer_still_lets_the_work_start() -> None:
    runner = TaskRunner(answers_first_for=60)
    try:
        with runner.answering():
            held = await started(runner, after_answers=True)
            raise RuntimeError("the listener failed")
    except RuntimeError:
        pass
    await asyncio.wait_for(held.wait(), 5)
