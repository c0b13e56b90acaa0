"""What recording a request reads and writes besides its rows: the opted-out numbers among
its recipients, the refusals read from a record's answers, the request and its sends as
inserted (no second read), and the caller's side of the handshake (``Ticket``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from bot.errors import AllOptedOut, Duplicate
from bot.store.records import NewRequest, Recorded, RequestState, SendRecord, StoredRequest
from bot.store.tx import Pending, Tx, placeholders


def as_recorded(
    new: NewRequest,
    request_id: str,
    state: RequestState,
    now: datetime,
    expires_at: datetime | None,
) -> StoredRequest:
    """The request as its insert recorded it, without reading it back."""
    return StoredRequest(
        id=request_id,
        kind=new.kind,
        sender=new.sender,
        channel_id=new.channel_id,
        thread_ts=new.thread_ts,
        response_url=new.response_url,
        from_name=new.from_name,
        from_number=new.from_number,
        text=new.text,
        segments=new.segments,
        encoding=new.encoding,
        state=state,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
        decided_by=None,
        decided_at=None,
        decision_reason=None,
        approval_channel=None,
        approval_ts=None,
        dedupe_key=new.dedupe_key,
        recipients=tuple(new.recipients),
        targets=new.targets,
    )


def opted_out_among(tx: Tx, numbers: Sequence[str]) -> frozenset[str]:
    """Which of ``numbers`` have opted out (read in chunks: a page may name thousands)."""
    return opted_out(opted_out_later(tx, numbers))


def opted_out_later(tx: Tx, numbers: Sequence[str]) -> list[Pending]:
    """The reads of ``opted_out_among``, their answers read later (``opted_out``)."""
    unique = sorted(set(numbers))
    return [
        tx.later(f"SELECT number FROM opt_outs WHERE number IN ({placeholders(len(chunk))})", chunk)
        for chunk in (unique[i : i + 500] for i in range(0, len(unique), 500))
    ]


def opted_out(reads: Sequence[Pending]) -> frozenset[str]:
    return frozenset(number for read in reads for (number,) in read.rows)


def refuse(
    claimed: Sequence[Pending],
    opted_out: frozenset[str] | None,
    numbers: Sequence[str],
    check_limits: Callable[[], None] | None,
) -> None:
    """Read the answers a record may be refused for, in this order: a claim taken already
    (a retry or a replay), every recipient opted out, a rate limit."""
    if not all(claim.rows for claim in claimed):
        raise Duplicate
    if opted_out is not None and opted_out.issuperset(numbers):
        raise AllOptedOut("every recipient has opted out")
    if check_limits is not None:
        check_limits()


class Inserted:
    """A request as inserted, and the inserts of its sends, whose ids are read later."""

    def __init__(self, request: StoredRequest, inserts: Sequence[Pending]) -> None:
        self.request = request
        self._inserts = inserts

    def sends(self) -> tuple[SendRecord, ...]:
        """The sends as inserted, in the order the recipients were given."""
        request = self.request
        # ids rise in insertion order; RETURNING's own order is not promised
        ids = sorted(int(send_id) for insert in self._inserts for (send_id,) in insert.rows)
        return tuple(
            SendRecord(send_id, request.id, r.number, r.name, "queued", None, None, 0, None,
                       request.created_at)
            for send_id, r in zip(ids, request.recipients, strict=True)
        )  # fmt: skip


class Ticket:
    """The handshake between a caller that may stop waiting for ``create_request`` and the
    thread that runs it, so that Slack's answer and the request's fate always agree.

    Exactly one side wins: the store hands the recorded request over, and the caller must
    start it even if its own wait just ran out; or the caller abandons first, and a request
    committed anyway is expired at once, so neither this process nor any sweeper sends it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: Literal["waiting", "handed_over", "abandoned"] = "waiting"
        self._recorded: Recorded | None = None

    @property
    def abandoned(self) -> bool:
        return self._state == "abandoned"

    def abandon(self) -> Recorded | None:
        """The caller stops waiting: the request if it was already handed over (start it),
        else None, and the store will never hand it over now."""
        with self._lock:
            if self._state == "handed_over":
                return self._recorded
            self._state = "abandoned"
            return None

    def hand_over(self, recorded: Recorded) -> bool:
        """The store's side, after the commit: False when the caller has already gone."""
        with self._lock:
            if self._state == "abandoned":
                return False
            self._state, self._recorded = "handed_over", recorded
            return True
