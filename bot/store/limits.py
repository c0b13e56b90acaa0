"""Hourly rate limits, counted in the database so that every app process sees the same totals.

The store takes one lock per key named here before counting and inserting, so concurrent
requests from several processes cannot together slip past a limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.store.records import NewRecipient, RateLimited, RateLimits, RequestState
from bot.store.tx import Tx, from_db_time, placeholders, utc

# Requests in these states never reach 2Chat, so their sends do not count against rate limits.
_NOT_COUNTED: tuple[RequestState, ...] = ("rejected", "expired")
_RATE_WINDOW = timedelta(hours=1)

# One limit to check: what to call it, its size, the SQL filter that counts against it, the
# filter's parameters, and how many SMS the new request would add.
_Check = tuple[str, int, str, Sequence[Any], int]


def rate_keys(sender: str, recipients: Sequence[NewRecipient], limits: RateLimits) -> set[str]:
    """The lock keys a request must hold while its limits are counted."""
    keys: set[str] = set()
    if limits.per_sender_per_hour is not None:
        keys.add(f"sms-bridge:sender:{sender}")
    if limits.per_recipient_per_hour is not None:
        keys.update(f"sms-bridge:recipient:{r.number}" for r in recipients)
    return keys


def check_limits(
    tx: Tx, sender: str, recipients: Sequence[NewRecipient], limits: RateLimits, now: datetime
) -> None:
    """Raise RateLimited at the latest of the moments each exceeded limit frees up, so the
    user who comes back then is not refused again."""
    not_counted = placeholders(len(_NOT_COUNTED))
    refusals: list[tuple[datetime, str]] = []
    for what, limit, where, params, wanted in _checks(sender, recipients, limits, now):
        if wanted > limit:
            raise RateLimited(
                f"rate limit: {what}, and this request alone has {wanted}; "
                "send to fewer recipients",
                now + _RATE_WINDOW,
            )
        times = tx.rows(
            "SELECT s.created_at FROM sends s JOIN requests r ON r.id = s.request_id "
            f"WHERE {where} AND r.state NOT IN ({not_counted}) ORDER BY s.created_at",
            (*params, *_NOT_COUNTED),
        )
        excess = len(times) + wanted - limit
        if excess > 0:
            # The window frees up when the excess-th oldest SMS turns an hour old.
            oldest = from_db_time(times[excess - 1][0]) or now
            refusals.append((oldest + _RATE_WINDOW, what))
    if refusals:
        retry_at, what = max(refusals)
        raise RateLimited(
            f"rate limit: {what}; you can send again at {_clock_time(retry_at)}", retry_at
        )


def _checks(
    sender: str, recipients: Sequence[NewRecipient], limits: RateLimits, now: datetime
) -> list[_Check]:
    """The limits that apply to a request: one per sender, one per distinct recipient."""
    since = now - _RATE_WINDOW
    checks: list[_Check] = []
    if limits.per_sender_per_hour is not None:
        checks.append(
            (
                f"{limits.per_sender_per_hour} SMS per hour per sender",
                limits.per_sender_per_hour,
                "r.sender = ? AND r.created_at > ?",
                (sender, since),
                len(recipients),
            )
        )
    if limits.per_recipient_per_hour is not None:
        for number, wanted in Counter(r.number for r in recipients).items():
            checks.append(
                (
                    f"{limits.per_recipient_per_hour} SMS per hour to {number}",
                    limits.per_recipient_per_hour,
                    "s.number = ? AND s.created_at > ?",
                    (number, since),
                    wanted,
                )
            )
    return checks


def _clock_time(value: datetime) -> str:
    """``14:05 UTC``, rounded up so that the user who waits until then is not refused again."""
    value = utc(value)
    if value.second or value.microsecond:
        value = value.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return value.strftime("%H:%M UTC")
