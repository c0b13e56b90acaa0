"""The 2Chat budget kept in the database: one log of calls for every process that shares it."""

from __future__ import annotations

from datetime import timedelta

from bot.core.budget import COUNTED_SECONDS, BudgetRule, Priority, wait_needed
from bot.store.core import StoreCore
from bot.store.tx import from_db_time

BUDGET_LOCK = "sms-bridge:twochat-budget"
_WINDOW = timedelta(seconds=COUNTED_SECONDS)


class BudgetQueries(StoreCore):
    """Starts of 2Chat calls, granted under one lock so processes never overspend together."""

    def take_twochat_call(self, priority: Priority, rule: BudgetRule, floor: bool) -> float:
        """Record a call of ``priority`` and return 0 if it may start now, else the seconds
        to wait (see ``bot.core.budget.wait_needed``)."""
        with self._transaction(write=True, locks=[BUDGET_LOCK]) as tx:
            now = self._now()
            # The purge rides on the read (Tx.along), which leaves out what it purges.
            counted_since = now - _WINDOW
            tx.along("DELETE FROM twochat_calls WHERE at <= ?", (counted_since,))
            calls = []
            for at, kind in tx.rows(
                "SELECT at, priority FROM twochat_calls WHERE at > ?", (counted_since,)
            ):
                moment = from_db_time(at)
                if moment is not None:
                    calls.append((moment.timestamp(), Priority(int(kind))))
            wait = wait_needed(calls, now.timestamp(), priority, rule, floor=floor)
            if wait <= 0:
                tx.run(
                    "INSERT INTO twochat_calls (at, priority) VALUES (?, ?)", (now, int(priority))
                )
            return wait
