"""One open transaction, as every query sees it, and the time conversions both backends share.

Queries are written once with ``?`` placeholders and timezone-aware datetimes as parameters;
each backend's ``Tx`` turns those into what its driver wants.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar


def utc(value: datetime) -> datetime:
    """Normalise to UTC; a naive datetime is a bug (its zone is a guess), so refuse it."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware times")
    return value.astimezone(UTC)


def from_db_time(value: Any) -> datetime | None:
    """Read a time column: ISO text from SQLite, timestamptz from Postgres."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value)
    return utc(datetime.fromisoformat(str(value)))


def row_values(
    row: Sequence[Any], columns: Sequence[str], times: Collection[str]
) -> dict[str, Any]:
    """A row as ``{column: value}``, its time columns read back as aware datetimes."""
    values = dict(zip(columns, row, strict=True))
    for name in times:
        values[name] = from_db_time(values[name])
    return values


def iso(value: datetime | None) -> str | None:
    """A time as ISO-8601 UTC text, for JSON."""
    return None if value is None else utc(value).isoformat()


def placeholders(count: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` or ``VALUES (...)`` of ``count`` values."""
    return ", ".join("?" * count)


# What a statement gave back: (rows it returned, rows it changed).
Result = tuple[list[tuple[Any, ...]], int]


class Pending:
    """A statement's result, read when first asked for. A backend that pipelines (PostgreSQL)
    sends the statement with the next one whose answer is awaited, or with the COMMIT, so
    statements queued together cost one round trip; the others hand back an answer at once."""

    def __init__(self, fetch: Callable[[], Result]) -> None:
        self._fetch: Callable[[], Result] | None = fetch
        self._result: Result = ([], -1)

    def result(self) -> Result:
        if self._fetch is not None:
            self._result, self._fetch = self._fetch(), None
        return self._result

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return self.result()[0]

    @property
    def count(self) -> int:
        return self.result()[1]


class Tx(ABC):
    """One open transaction; SQL uses ``?`` placeholders, converted per backend."""

    # Whether one statement may change several tables (PostgreSQL's data-modifying WITH):
    # a backend that pays per statement (PostgreSQL, over a socket) then runs a call's
    # writes as one; SQLite, which has no such statement, runs them one by one.
    folds_writes: ClassVar[bool] = False

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        """Run one statement: (rows it returned, rows it changed)."""

    def later(self, sql: str, params: Sequence[Any] = ()) -> Pending:
        """Run one statement whose answer is read later, if at all: a pipelining backend
        sends it with the next statement awaited (see ``Pending``). An error it meets is
        raised by that statement, or by the commit, and rolls the transaction back."""
        result = self.execute(sql, params)
        return Pending(lambda: result)

    def along(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a write whose answer is never read, and that touches no row the statements
        queued beside it (until the next answer read) read or write: a backend that pays
        per statement (PostgreSQL) may run it as part of one of them."""
        self.later(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.execute(sql, params)[0]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.execute(sql, params)[1]
