"""The 2Chat budget in the database: stores opened by different processes on one database
grant starts from one log, so together they never pass the account's limit."""

from __future__ import annotations

import pytest

from bot.core.budget import BudgetRule, Grant, Priority
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
