"""The 2Chat budget kept in the database: one log of calls, and the account's limit as last
read from 2Chat, for every process that shares it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.core.budget import COUNTED_SECONDS, BudgetRule, Grant, Priority, wait_needed
from bot.store.core import StoreCore
from bot.store.tx import from_db_time

BUDGET_LOCK = "sms-bridge:twochat-budget"
_WINDOW = timedelta(seconds=COUNTED_SECONDS)


class BudgetQueries(StoreCore):
    """Starts of 2Chat calls, granted under one lock so processes never overspend together."""

    def take_twochat_call(self, priority: Priority, rule: BudgetRule, floor: bool) -> Grant:
        """Record a call of ``priority`` if it may start now (a wait of 0), else say how
        long to wait (see ``bot.core.budget.wait_needed``). A rule that follows the account
        is judged by the limit last read from 2Chat by any process, which the grant names."""
        with self._transaction(write=True, locks=[BUDGET_LOCK]) as tx:
            now = self._now()
            # The purge rides on the read (Tx.along), which leaves out what it purges. The
            # one limit row comes with every call (or alone, with none): one statement.
            counted_since = now - _WINDOW
            tx.along("DELETE FROM twochat_calls WHERE at <= ?", (counted_since,))
            calls = []
            learned: int | None = None
            for known, at, kind in tx.rows(
                "SELECT l.per_minute, c.at, c.priority FROM twochat_limit l "
                "LEFT JOIN twochat_calls c ON c.at > ?",
                (counted_since,),
            ):
                learned = known
                moment = from_db_time(at)
                if moment is not None:
                    calls.append((moment.timestamp(), Priority(int(kind))))
            if rule.from_account and learned is not None:
                rule = replace(rule, per_minute=int(learned))
            wait = wait_needed(calls, now.timestamp(), priority, rule, floor=floor)
            if wait <= 0:
                tx.run(
                    "INSERT INTO twochat_calls (at, priority) VALUES (?, ?)", (now, int(priority))
                )
            return Grant(wait, rule.per_minute)

    def learn_twochat_limit(self, per_minute: int) -> None:
        """Keep the account's limit as 2Chat just reported it, for every process to pace by."""
        with self._transaction(write=True) as tx:
            tx.run(
                "UPDATE twochat_limit SET per_minute = ?, read_at = ? WHERE id = 1",
                (per_minute, self._now()),
            )
