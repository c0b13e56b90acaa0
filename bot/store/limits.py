"""Hourly rate limits, counted in the database so that every app process sees the same totals.

Counting the sends of the last hour row by row made every request slower as history grew, so
each request adds its SMS to per-minute counters instead: one row per sender and per
recipient number for each minute (``rate_counts``), written in the transaction that records
the request. A check reads at most the last 61 rows of each key, however long the history.

A minute's row also keeps the time of its latest SMS, and counts whole until that SMS is an
hour old. So a limit is never exceeded within any rolling hour, and the time a refusal gives
(when that row stops counting) is a time at which the same request is allowed.

The store takes one lock per key named here before counting and inserting, so concurrent
requests from several processes cannot together slip past a limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.errors import RateLimited
from bot.store.records import NewRecipient, RateLimits, RequestState
from bot.store.tx import Pending, Tx, from_db_time, placeholders, utc

# Requests in these states never reach 2Chat, so their sends do not count against rate limits.
NOT_COUNTED: tuple[RequestState, ...] = ("rejected", "expired")
RATE_WINDOW = timedelta(hours=1)
_BUCKET = timedelta(minutes=1)
# Keys per IN (...) list: well inside every backend's limit on parameters.
_KEYS_PER_QUERY = 500

# One limit to check: what to call it, its size, its counter key, and how many SMS the new
# request would add.
_Check = tuple[str, int, str, int]


def sender_key(sender: str) -> str:
    """The counter of SMS requested by one Slack user."""
    return f"sender:{sender}"


def number_key(number: str) -> str:
    """The counter of SMS to one phone number."""
    return f"number:{number}"


def bucket_of(moment: datetime) -> datetime:
    """The start of the counter minute ``moment`` falls in."""
    return utc(moment).replace(second=0, microsecond=0)


def rate_keys(sender: str, recipients: Sequence[NewRecipient], limits: RateLimits) -> set[str]:
    """The lock keys a request must hold while its limits are counted."""
    keys: set[str] = set()
    if limits.per_sender_per_hour is not None:
        keys.add(f"sms-bridge:sender:{sender}")
    if limits.per_recipient_per_hour is not None:
        keys.update(f"sms-bridge:recipient:{r.number}" for r in recipients)
    return keys


def count_request(tx: Tx, sender: str, numbers: Sequence[str], created_at: datetime) -> None:
    """Add a new request's SMS to its minute's counters. Every request is counted, limited
    or not, so limits added by a policy reload see the hour that came before. Its answer is
    not read: it may run as part of the request's insert (``Tx.along``)."""
    deltas = _deltas(sender, numbers)
    bucket = bucket_of(created_at)
    params = [value for key, count in deltas.items() for value in (key, bucket, created_at, count)]
    rows = ", ".join(f"({placeholders(4)})" for _ in deltas)
    tx.along(
        f"INSERT INTO rate_counts (key, bucket, last_at, count) VALUES {rows} "
        "ON CONFLICT (key, bucket) DO UPDATE SET count = rate_counts.count + excluded.count, "
        "last_at = CASE WHEN excluded.last_at > rate_counts.last_at "
        "THEN excluded.last_at ELSE rate_counts.last_at END",
        params,
    )


def uncount_request(tx: Tx, request_id: str) -> None:
    """Take a request that will never be sent (rejected, expired) off its counters; the
    caller's conditional update makes sure this happens once."""
    found = tx.one("SELECT sender, created_at FROM requests WHERE id = ?", (request_id,))
    if found is None:
        return
    created_at = from_db_time(found[1])
    assert created_at is not None  # created_at is NOT NULL
    numbers = [
        n for (n,) in tx.rows("SELECT number FROM sends WHERE request_id = ?", (request_id,))
    ]
    for key, count in _deltas(found[0], numbers).items():
        tx.run(
            "UPDATE rate_counts SET count = count - ? WHERE key = ? AND bucket = ?",
            (count, key, bucket_of(created_at)),
        )


def _deltas(sender: str, numbers: Sequence[str]) -> dict[str, int]:
    """How many SMS a request adds to each counter it touches."""
    return {sender_key(sender): len(numbers)} | {
        number_key(number): count for number, count in Counter(numbers).items()
    }


def check_limits(
    tx: Tx, sender: str, recipients: Sequence[NewRecipient], limits: RateLimits, now: datetime
) -> None:
    """Raise RateLimited at the latest of the moments each exceeded limit frees up, so the
    user who comes back then is not refused again."""
    check_limits_later(tx, sender, recipients, limits, now)()


def check_limits_later(
    tx: Tx, sender: str, recipients: Sequence[NewRecipient], limits: RateLimits, now: datetime
) -> Callable[[], None]:
    """``check_limits`` in two halves: the last hour's counters are read now, with
    ``Tx.later``, and the check it hands back raises RateLimited when called, so that the
    read goes out with the statements queued after it (one round trip on PostgreSQL)."""
    checks = _checks(sender, recipients, limits)
    reads = _last_hour(tx, [key for _, _, key, _ in checks], now)

    def check() -> None:
        for what, limit, _, wanted in checks:
            if wanted > limit:
                raise RateLimited(
                    f"rate limit: {what}, and this request alone has {wanted}; "
                    "send to fewer recipients",
                    now + RATE_WINDOW,
                )
        history: dict[str, list[tuple[Any, int]]] = {}
        for read in reads:
            for key, last_at, count in read.rows:
                history.setdefault(key, []).append((last_at, int(count)))
        refusals: list[tuple[datetime, str]] = []
        for what, limit, key, wanted in checks:
            free_at = _frees_up(history.get(key, []), limit - wanted, now)
            if free_at is not None:
                refusals.append((free_at, what))
        if refusals:
            retry_at, what = max(refusals)
            raise RateLimited(
                f"rate limit: {what}; you can send again at {_clock_time(retry_at)}", retry_at
            )

    return check


def _last_hour(tx: Tx, keys: Sequence[str], now: datetime) -> list[Pending]:
    """The reads of each key's minutes of the last hour, oldest first: at most 61 rows a
    key, read in a few queries however many recipients a page has."""
    since = now - RATE_WINDOW
    return [
        tx.later(
            "SELECT key, last_at, count FROM rate_counts "
            f"WHERE key IN ({placeholders(len(chunk))}) AND bucket > ? AND last_at > ? "
            "ORDER BY key, bucket",
            (*chunk, since - _BUCKET, since),
        )
        for chunk in (keys[i : i + _KEYS_PER_QUERY] for i in range(0, len(keys), _KEYS_PER_QUERY))
    ]


def _frees_up(rows: list[tuple[Any, int]], room: int, now: datetime) -> datetime | None:
    """None when a key's last hour (``rows``) holds at most ``room`` SMS; else when enough
    of them age out."""
    excess = sum(count for _, count in rows) - room
    for last_at, count in rows:
        if excess <= 0:
            break
        excess -= count
        if excess <= 0:
            return (from_db_time(last_at) or now) + RATE_WINDOW
    return None


def _checks(sender: str, recipients: Sequence[NewRecipient], limits: RateLimits) -> list[_Check]:
    """The limits that apply to a request: one per sender, one per distinct recipient."""
    checks: list[_Check] = []
    if limits.per_sender_per_hour is not None:
        checks.append(
            (
                f"{limits.per_sender_per_hour} SMS per hour per sender",
                limits.per_sender_per_hour,
                sender_key(sender),
                len(recipients),
            )
        )
    if limits.per_recipient_per_hour is not None:
        for number, wanted in Counter(r.number for r in recipients).items():
            checks.append(
                (
                    f"{limits.per_recipient_per_hour} SMS per hour to {number}",
                    limits.per_recipient_per_hour,
                    number_key(number),
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
