"""The 2Chat budget kept in the database: the calls made, numbered, and the account's limit as
last read from 2Chat, for every process that shares it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.core.budget import COUNTED_SECONDS, BudgetRule, Grant, Pace, Priority, cap_of, wait_needed
from bot.store.core import StoreCore
from bot.store.tx import Tx, from_db_time

BUDGET_LOCK = "sms-bridge:twochat-budget"
_WINDOW = timedelta(seconds=COUNTED_SECONDS)
# Calls older than the counted minute are deleted once every so many starts: the lookup by
# number ignores them, so they only take room meanwhile.
PURGE_EVERY = 64


class BudgetQueries(StoreCore):
    """Starts of 2Chat calls, granted under one lock so processes never overspend together."""

    def take_twochat_call(self, priority: Priority, rule: BudgetRule, floor: bool) -> Grant:
        """Record a call of ``priority`` if it may start now (a wait of 0), else say how
        long to wait (see ``bot.core.budget.wait_needed``). A rule that follows the account
        is judged by the limit last read from 2Chat by any process, which the grant names.
        One read whatever the rate: the limit, the count, the pace and the one call the cap
        looks back to (looked up again only when another process read a new limit)."""
        with self._transaction(write=True, locks=[BUDGET_LOCK]) as tx:
            now = self._now()
            cap = cap_of(rule, priority, floor=floor)
            # The call looked back to comes by a subquery on its primary key: as a join,
            # the planner may hash the whole log.
            row = tx.one(
                "SELECT per_minute, calls_made, owed, owed_at, "
                "(SELECT at FROM twochat_calls WHERE seq = calls_made - ?) "
                "FROM twochat_limit WHERE id = 1",
                (cap - 1,),
            )
            assert row is not None, "schema 9 inserts the one limit row"
            learned, made, owed, owed_at, cap_at = row
            if rule.from_account and learned is not None and learned != rule.per_minute:
                rule = replace(rule, per_minute=int(learned))
                if cap_of(rule, priority, floor=floor) != cap:
                    cap = cap_of(rule, priority, floor=floor)
                    found = tx.one("SELECT at FROM twochat_calls WHERE seq = ?", (made - cap + 1,))
                    cap_at = found[0] if found else None
            paid_at = _seconds(owed_at)
            pace = Pace() if paid_at is None else Pace(float(owed), paid_at)
            wait = wait_needed(now.timestamp(), rule, pace, _seconds(cap_at))
            if wait <= 0:
                _record_call(tx, int(made) + 1, now, pace.after_call(now.timestamp(), rule))
            return Grant(wait, rule.per_minute)

    def learn_twochat_limit(self, per_minute: int) -> None:
        """Keep the account's limit as 2Chat just reported it, for every process to pace by."""
        with self._transaction(write=True) as tx:
            tx.run(
                "UPDATE twochat_limit SET per_minute = ?, read_at = ? WHERE id = 1",
                (per_minute, self._now()),
            )


def _record_call(tx: Tx, number: int, now: datetime, pace: Pace) -> None:
    """Log call ``number`` and the pace after it: writes nothing reads back in this
    transaction, so a pipelining backend sends them with the commit."""
    if number % PURGE_EVERY == 0:
        tx.along("DELETE FROM twochat_calls WHERE at <= ?", (now - _WINDOW,))
    tx.along("INSERT INTO twochat_calls (seq, at) VALUES (?, ?)", (number, now))
    tx.along(
        "UPDATE twochat_limit SET calls_made = ?, owed = ?, owed_at = ? WHERE id = 1",
        (number, pace.owed, now),
    )


def _seconds(value: Any) -> float | None:
    """A time column as seconds since the epoch (None for NULL)."""
    moment = from_db_time(value)
    return None if moment is None else moment.timestamp()
