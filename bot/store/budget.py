"""The 2Chat budget kept in the database: the calls made, numbered, and the account's limit as
last read from 2Chat, for every process that shares it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.core.budget import (
    COUNTED_SECONDS,
    BudgetRule,
    Grant,
    Pace,
    Priority,
    cap_of,
    looked_back,
    starts_now,
)
from bot.store.core import StoreCore
from bot.store.tx import Tx, from_db_time

BUDGET_LOCK = "sms-bridge:twochat-budget"
_WINDOW = timedelta(seconds=COUNTED_SECONDS)
# Calls older than the counted minute are deleted once every so many starts: the lookup by
# number ignores them, so they only take room meanwhile.
PURGE_EVERY = 64


class BudgetQueries(StoreCore):
    """Starts of 2Chat calls, granted under one lock so processes never overspend together."""

    def take_twochat_call(
        self, priority: Priority, rule: BudgetRule, floor: bool, wanted: int = 1
    ) -> Grant:
        """Record up to ``wanted`` calls of ``priority`` that may start now (a wait of 0),
        else say how long to wait (see ``bot.core.budget.starts_now``). A rule that follows
        the account is judged by the limit last read from 2Chat by any process, which the
        grant names. One read whatever the rate: the limit, the count, the pace and the
        calls the cap looks back to (read again only when another process read a new limit)."""
        with self._transaction(write=True, locks=[BUDGET_LOCK]) as tx:
            now = self._now()
            cap = cap_of(rule, priority, floor=floor)
            rows = tx.rows(
                "SELECT l.per_minute, l.calls_made, l.owed, l.owed_at, c.seq, c.at "
                "FROM twochat_limit l LEFT JOIN twochat_calls c "
                "ON c.seq BETWEEN l.calls_made - ? AND l.calls_made - ? WHERE l.id = 1",
                (cap - 1, cap - wanted),
            )
            learned, made, owed, owed_at = rows[0][:4]
            looked_up = {seq: at for *_, seq, at in rows if seq is not None}
            if rule.from_account and learned is not None and learned != rule.per_minute:
                rule = replace(rule, per_minute=int(learned))
                if (relooked := cap_of(rule, priority, floor=floor)) != cap:
                    cap = relooked
                    looked_up = dict(
                        tx.rows(
                            "SELECT seq, at FROM twochat_calls WHERE seq BETWEEN ? AND ?",
                            (made - cap + 1, made - cap + wanted),
                        )
                    )
            moment = now.timestamp()
            # ``back`` calls back is call number ``made - back + 1``.
            backs = [
                moment if back <= 0 else _seconds(looked_up.get(made - back + 1))
                for back in looked_back(cap, wanted)
            ]
            paid_at = _seconds(owed_at)
            pace = Pace() if paid_at is None else Pace(float(owed), paid_at)
            wait, granted = starts_now(moment, rule, pace, backs)
            if granted:
                _record_calls(tx, int(made), granted, now, pace.after_calls(moment, rule, granted))
            return Grant(wait, rule.per_minute, granted)

    def learn_twochat_limit(self, per_minute: int) -> None:
        """Keep the account's limit as 2Chat just reported it, for every process to pace by."""
        with self._transaction(write=True) as tx:
            tx.run(
                "UPDATE twochat_limit SET per_minute = ?, read_at = ? WHERE id = 1",
                (per_minute, self._now()),
            )


def _record_calls(tx: Tx, made: int, count: int, now: datetime, pace: Pace) -> None:
    """Log ``count`` calls after call ``made``, and the pace after them: writes nothing
    reads back in this transaction, so a pipelining backend sends them with the commit."""
    last = made + count
    if last // PURGE_EVERY != made // PURGE_EVERY:
        tx.along("DELETE FROM twochat_calls WHERE at <= ?", (now - _WINDOW,))
    tx.along(
        f"INSERT INTO twochat_calls (seq, at) VALUES {', '.join(['(?, ?)'] * count)}",
        [value for number in range(made + 1, last + 1) for value in (number, now)],
    )
    tx.along(
        "UPDATE twochat_limit SET calls_made = ?, owed = ?, owed_at = ? WHERE id = 1",
        (last, pace.owed, now),
    )


def _seconds(value: Any) -> float | None:
    """A time column as seconds since the epoch (None for NULL)."""
    moment = from_db_time(value)
    return None if moment is None else moment.timestamp()
