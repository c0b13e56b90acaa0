"""Store calls run together: what a backend that commits many calls at once takes and gives.

SQLite syncs its file at every commit, and that sync, not the SQL, is most of what a
transaction costs. Calls that queue up while one runs are run in one transaction, each in
a savepoint of its own, and committed once (``SqliteStore.run_batch``): a send's three
round trips share their syncs with every other send in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class CallOutcome:
    """What one call of a batch came to once the batch was committed (or not)."""

    value: Any = None
    error: BaseException | None = None
    # Steps the call left for after the commit (``StoreCore._after_commit``).
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def settle(self) -> None:
        """Run the call's after-commit steps; the first that fails becomes its error."""
        steps, self.after_commit = self.after_commit, []
        for step in steps:
            try:
                step()
            except Exception as exc:  # it is the call's outcome
                self.value, self.error = None, exc
                return


@runtime_checkable
class BatchingStore(Protocol):
    """A store whose calls are best run in batches, on one thread."""

    def run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[CallOutcome]:
        """Run ``calls`` in order; each outcome is final: committed, or an error."""
        ...
