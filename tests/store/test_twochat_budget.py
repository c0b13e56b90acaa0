"""The 2Chat budget in the database: stores opened by different processes on one database
grant starts from one log, so together they never pass the account's limit."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.core.budget import COUNTED_SECONDS, BudgetRule, Grant, Priority, cap_of
from bot.sms.budget import MemoryLedger
from tests.store.helpers import Backend, FakeClock


def test_stores_sharing_a_database_share_one_budget(backend: Backend, clock: FakeClock) -> None:
    first, second = backend.open(), backend.open()
    rule = BudgetRule(per_minute=8, burst=4)
    grants = [
        store.take_twochat_call(Priority.SEND, rule, False).wait == 0
        for store in (first, second, first, second, first, second)
    ]
    assert grants == [True, True, True, True, False, False]
    # After a burst the pace is the limit's: one start every 7.5 s, from either store.
    assert second.take_twochat_call(Priority.SEND, rule, False).wait == pytest.approx(7.5)
    clock.advance(seconds=7.5)
    assert second.take_twochat_call(Priority.PAGE, rule, False).wait == 0
    assert first.take_twochat_call(Priority.PAGE, rule, False).wait > 0


def test_polls_use_the_spare_half_and_their_floor_up_to_the_limit(
    backend: Backend, clock: FakeClock
) -> None:
    store = backend.open()
    rule = BudgetRule(per_minute=20, burst=20)
    assert [store.take_twochat_call(Priority.POLL, rule, False).wait == 0 for _ in range(11)] == [
        *([True] * 10),
        False,  # half the minute is for polls while nothing more urgent waits
    ]
    clock.advance(seconds=61)
    for _ in range(18):
        assert store.take_twochat_call(Priority.SEND, rule, False).wait == 0
    # Texts have filled most of the minute: a poll may not start on its own, but a poll
    # taking its floor (the pacer counts it) may, up to the limit.
    assert store.take_twochat_call(Priority.POLL, rule, False).wait > 0
    assert store.take_twochat_call(Priority.POLL, rule, True).wait == 0
    assert store.take_twochat_call(Priority.POLL, rule, True).wait == 0
    assert store.take_twochat_call(Priority.POLL, rule, True).wait > 0  # the minute is full
    assert store.take_twochat_call(Priority.LOOKUP, rule, False).wait > 0


def test_the_accounts_limit_read_by_one_store_paces_every_store_that_follows_it(
    backend: Backend,
) -> None:
    """A plan changed and one process read the new limit: the others, still holding the old
    reading, are judged by the new one from their next call; a policy's limit still wins."""
    first, second = backend.open(), backend.open()
    old_reading = BudgetRule(per_minute=80, burst=5, from_account=True)
    assert second.take_twochat_call(Priority.SEND, old_reading, False) == Grant(0, 80)
    first.learn_twochat_limit(2)
    assert second.take_twochat_call(Priority.SEND, old_reading, False) == Grant(0, 2)
    grant = second.take_twochat_call(Priority.SEND, old_reading, False)
    assert grant.per_minute == 2 and grant.wait > 0  # two calls in the minute already
    policy = BudgetRule(per_minute=80, burst=5)
    assert first.take_twochat_call(Priority.SEND, policy, False) == Grant(0, 80)


def _budget_walk(seed: int) -> list[tuple[float, Priority, BudgetRule, bool, int]]:
    """A seeded run of starts asked for: moments (some at once, some apart, some a minute
    apart), every priority, polls with and without their floor, one start or several (texts
    queued behind the head), and the limit and burst changing now and then (a reloaded
    policy)."""
    draw = random.Random(seed)
    rule, now, asks = BudgetRule(per_minute=12, burst=3), 0.0, []
    for _ in range(400):
        if draw.random() < 0.03:
            rule = BudgetRule(per_minute=draw.choice([1, 3, 12, 30, 80]), burst=draw.randint(1, 6))
        now += draw.choice([0.0, 0.0, 0.001, draw.uniform(0, 3), draw.uniform(0, 70)])
        priority = draw.choice(list(Priority))
        wanted = draw.choice([1, 1, 2, 5]) if priority <= Priority.SEND else 1
        asks.append((round(now, 6), priority, rule, draw.random() < 0.3, wanted))
    return asks


Take = Callable[[float, Priority, BudgetRule, bool, int], Grant]


def _granted(asks: list[tuple[float, Priority, BudgetRule, bool, int]], take: Take) -> list[Any]:
    """A ledger's answers to ``asks``, each batch of starts it grants checked against the
    minute's cap by the plain count of the starts granted before it."""
    starts: list[float] = []
    answers = []
    for now, priority, rule, floor, wanted in asks:
        wait, _, granted = take(now, priority, rule, floor, wanted)
        assert (wait > 0) == (granted == 0) and granted <= wanted
        starts.extend([now] * granted)
        counted = [at for at in starts if now - at < COUNTED_SECONDS]
        assert len(counted) <= cap_of(rule, priority, floor=floor) or not granted, (now, rule)
        answers.append((round(wait, 3), granted))
    return answers


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_shared_budget_grants_what_a_lone_process_would_and_never_more_than_a_minute_holds(
    backend: Backend, clock: FakeClock, seed: int
) -> None:
    """The database's ledger keeps two facts (the calls' numbers, the pace's debt), not the
    minute's log: a seeded run with limit changes and several starts at once gets the same
    answers from it as from the lone process's ledger, and no grant puts more calls in a
    minute than its cap."""
    asks = _budget_walk(seed)
    store, began = backend.open(), clock.current

    def shared(now: float, priority: Priority, rule: BudgetRule, floor: bool, n: int) -> Grant:
        clock.current = began + timedelta(seconds=now)
        return store.take_twochat_call(priority, rule, floor, n)

    lone_now = [0.0]
    lone = MemoryLedger(clock=lambda: lone_now[0])

    def alone(now: float, priority: Priority, rule: BudgetRule, floor: bool, n: int) -> Grant:
        lone_now[0] = now
        return asyncio.run(lone.take(priority, rule, floor=floor, wanted=n))

    answers = _granted(asks, alone)
    assert _granted(asks, shared) == answers
    granted = [starts for _, starts in answers]
    assert 0 in granted and 1 in granted and max(granted) > 1  # refuses, grants, grants many
