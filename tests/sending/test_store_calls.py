"""The store's threads: calls a Slack answer waits on go first, answers reach the event loop
in groups, and Postgres calls run side by side."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bot.sending.store_calls import StoreCalls, each_alone, store_calls
from bot.store import NewRecipient, SqliteStore
from bot.store.batch import CallOutcome, Checked, Grouped, group_kind
from bot.store.core import answer_within
from bot.store.postgres import PostgresStore
from bot.store.requests import GROUPED_RECIPIENTS_AT_MOST
from tests.store.helpers import ALICE, new_request


async def held_up(calls: StoreCalls) -> tuple[asyncio.Future[Any], threading.Event]:
    """A background call that keeps the only store thread busy until the event is set."""
    gate = threading.Event()
    blocker = asyncio.ensure_future(calls.call(lambda: gate.wait(5)))
    await asyncio.sleep(0.05)  # the thread has taken it
    return blocker, gate


async def test_calls_a_slack_answer_waits_on_run_before_background_calls() -> None:
    calls = StoreCalls(each_alone, threads=1, batch=1)
    ran: list[str] = []
    try:
        blocker, gate = await held_up(calls)
        background = [
            asyncio.ensure_future(calls.call(lambda i=i: ran.append(f"background {i}")))
            for i in range(3)
        ]
        with answer_within(5):  # the tasks take the answer's deadline along
            urgent = [
                asyncio.ensure_future(calls.call(lambda i=i: ran.append(f"urgent {i}")))
                for i in range(2)
            ]
        await asyncio.sleep(0.05)  # all queued behind the blocker
        gate.set()
        await asyncio.gather(blocker, *background, *urgent)
        assert ran == ["urgent 0", "urgent 1", "background 0", "background 1", "background 2"]
    finally:
        calls.close()


async def test_a_burst_of_answers_wakes_the_event_loop_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each wake-up of the loop costs it CPU: answers that are ready together go together."""
    loop = asyncio.get_running_loop()
    wake_ups: list[object] = []
    real = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        wake_ups.append(callback)
        return real(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    calls = StoreCalls(each_alone, threads=1, batch=1)
    try:
        blocker, gate = await held_up(calls)
        with answer_within(5):
            burst = [asyncio.ensure_future(calls.call(lambda i=i: i)) for i in range(10)]
        await asyncio.sleep(0.05)
        gate.set()
        assert await asyncio.gather(*burst) == list(range(10))
        assert await blocker is True
        assert len(wake_ups) == 1
    finally:
        calls.close()


def test_each_call_of_a_store_that_commits_alone_has_its_own_outcome() -> None:
    def fail() -> None:
        raise LookupError("not there")

    outcomes = each_alone([lambda: 1, fail, lambda: 3])
    assert [outcome.value for outcome in outcomes] == [1, None, 3]
    assert outcomes[0].error is None and outcomes[2].error is None
    assert isinstance(outcomes[1].error, LookupError)


async def test_postgres_calls_run_side_by_side(postgres_url: str) -> None:
    """One call waiting on the network (or a lock) does not hold up every other."""
    store = PostgresStore(postgres_url)
    calls = store_calls(store)
    try:
        assert store.workers >= 2
        meeting = threading.Barrier(store.workers, timeout=5)  # broken unless all meet
        arrivals = await asyncio.gather(*(calls.call(meeting.wait) for _ in range(store.workers)))
        assert sorted(arrivals) == list(range(store.workers))
    finally:
        calls.close()
        store.close()


async def test_where_only_grouped_calls_share_a_batch_every_other_call_runs_alone() -> None:
    """PostgreSQL's way: a store method that is a ``Grouped`` form run alone (a claim, a
    finish, an outcome landed) goes to the threads as that form, and queued ones are taken
    together; so do records (``Checked``), with each other, Slack answers waiting on them
    first; any other call, and a grouped one a Slack answer waits on, is taken on its own."""
    store = SqliteStore(":memory:")  # only its methods are queued: nothing runs them
    batches: list[list[str]] = []

    def run_calls(calls: Sequence[Callable[[], Any]]) -> list[CallOutcome]:
        kinds = {Grouped: "grouped", Checked: "checked", None: "alone"}
        batches.append([kinds[group_kind(call)] for call in calls])
        return [CallOutcome() for _ in calls]

    calls = StoreCalls(run_calls, threads=1, batch=50, groups_only=True)
    new = new_request(recipients=(ALICE,))
    try:
        gate = threading.Event()
        blocker = asyncio.ensure_future(calls.call(lambda: gate.wait(5)))
        await asyncio.sleep(0.05)  # the thread has taken it
        queued = [
            calls.run(store.claim_send, 1),
            calls.run(store.finish_send, 2, message_id="m-2"),
            calls.run(store.finish_last_send, 3, ("r-1", "holder"), error="refused"),
            calls.run(store.sends, "r-1"),
            calls.run(store.report_landed, "r-1", "holder"),
        ]
        waiting = [asyncio.ensure_future(call) for call in queued]
        with answer_within(5):
            waiting.append(asyncio.ensure_future(calls.run(store.claim_send, 4)))
            for _ in range(2):
                waiting.append(asyncio.ensure_future(calls.run(store.record_request, new)))
        await asyncio.sleep(0.05)  # all queued behind the blocker
        gate.set()
        await asyncio.gather(blocker, *waiting)
        assert batches == [
            ["alone"],  # the blocker
            ["alone"],  # the claim a Slack answer waits on, first and in its time limit
            ["checked", "checked"],  # the records, each carrying its caller's time limit
            ["grouped", "grouped", "grouped"],
            ["alone"],
            ["grouped"],
        ]
    finally:
        calls.close()
        store.close()


def test_a_record_to_more_than_a_hundred_people_is_taken_on_its_own() -> None:
    """Its inserts and locks take long enough that the acks grouped with it would wait."""
    store = SqliteStore(":memory:")
    most = GROUPED_RECIPIENTS_AT_MOST
    people = tuple(NewRecipient(f"+4477009{i:05d}", None) for i in range(most + 1))
    try:
        assert group_kind(store.recording(new_request(recipients=people[:most]))) is Checked
        assert group_kind(store.recording(new_request(recipients=people))) is None
    finally:
        store.close()
