"""Requests: recording them (with their limits and dedupe key), moving them along the
lifecycle, and the lookups the app, App Home and the audit export make."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.errors import Duplicate, StoreError
from bot.store.batch import Checked, RunAlone
from bot.store.core import REQUEST_COLUMNS, REQUEST_TIMES, StoreCore, answer_within
from bot.store.leases import claim_key_in, request_lease, take_new_lease_in
from bot.store.limits import (
    NOT_COUNTED,
    check_limits_later,
    count_request,
    rate_keys,
    uncount_request,
)
from bot.store.recording import (
    Inserted,
    Ticket,
    as_recorded,
    opted_out,
    opted_out_later,
    refuse,
)
from bot.store.records import (
    REQUEST_STATES,
    TRANSITIONS,
    NewRecipient,
    NewRequest,
    RateLimits,
    Recorded,
    RequestState,
    StoredRequest,
)
from bot.store.sends import store_thread_in
from bot.store.tx import Pending, Tx, from_db_time, iso, placeholders, utc

# The audit export's columns for requests and their sends, so an empty export still has
# its header. The response_url is left out: it lets anyone holding it post into the
# requester's conversation.
_AUDIT_REQUEST_COLUMNS = tuple(
    c for c in REQUEST_COLUMNS if c not in ("id", "state", "response_url")
)
AUDIT_COLUMNS = (
    "request_id",
    "request_state",
    *_AUDIT_REQUEST_COLUMNS,
    "send_id",
    "number",
    "name",
    "send_state",
    "message_id",
    "error",
    "attempts",
    "claimed_at",
    "send_updated_at",
)

_KINDS = frozenset({"sms", "page"})
# Rows per multi-row INSERT: few round trips, well inside every backend's parameter limit.
_SENDS_PER_INSERT = 500
# A record of more recipients runs in a transaction of its own (``Checked.shares``): its
# inserts and locks take long enough that the acks of records grouped with it would wait.
GROUPED_RECIPIENTS_AT_MOST = 100
ABANDONED = "recorded after the requester was told the database was unavailable"

logger = logging.getLogger(__name__)


def _count_and_lease(
    tx: Tx, now: datetime, lease: tuple[str, timedelta] | None, new: NewRequest, request_id: str
) -> None:
    """What goes with a request ``record_request`` inserts: its SMS on the rate counters,
    and with ``lease`` (holder, ttl), its lease for the process that delivers it."""
    count_request(tx, new.sender, [r.number for r in new.recipients], now)
    if lease is not None:
        holder, ttl = lease
        take_new_lease_in(tx, request_lease(request_id), holder, ttl, now)


def _insert_sends(
    tx: Tx, request_id: str, recipients: Sequence[NewRecipient], now: datetime
) -> list[Pending]:
    """Queue a request's sends, "queued", a few hundred a statement (a page may have
    thousands); their ids are read later."""
    return [
        tx.later(
            "INSERT INTO sends (request_id, number, name, state, attempts, "
            "created_at, updated_at) VALUES "
            + ", ".join("(?, ?, ?, 'queued', 0, ?, ?)" for _ in chunk)
            + " RETURNING id",
            [v for r in chunk for v in (request_id, r.number, r.name, now, now)],
        )
        for chunk in (
            recipients[i : i + _SENDS_PER_INSERT]
            for i in range(0, len(recipients), _SENDS_PER_INSERT)
        )
    ]


def _fresh(
    inserted: Inserted,
    claimed: Sequence[Pending],
    numbers: Sequence[str],
    check_limits: Callable[[], None] | None,
    opt_out_reads: Sequence[Pending] | None,
    started: bool,
) -> Recorded:
    """A request just inserted, once its answers show no refusal (``refuse``; opt-outs
    only with ``opt_out_reads``)."""
    out = opted_out(opt_out_reads or ())
    refuse(claimed, out if opt_out_reads is not None else None, numbers, check_limits)
    return Recorded(inserted.request, inserted.sends(), out, fresh=True, started=started)


class Recording(Checked[Recorded | None, Recorded]):
    """A request's record as a ``Checked`` call (see ``RequestQueries.recording``): None
    when a claim was taken already. A caller that stopped waiting (its ``Ticket``) gets a
    request committed anyway expired, and nothing is sent."""

    def __init__(
        self,
        store: RequestQueries,
        new: NewRequest,
        limits: RateLimits | None,
        ticket: Ticket | None,
        claims: Sequence[tuple[str, timedelta]],
        start: tuple[str, timedelta] | None,
        opt_outs: bool,
        locks: Collection[str],
    ) -> None:
        shares = len(new.recipients) <= GROUPED_RECIPIENTS_AT_MOST
        super().__init__(store._transaction, locks, shares=shares)
        self._store, self._new, self._limits, self._ticket = store, new, limits, ticket
        self._claims, self._start, self._opt_outs = claims, start, opt_outs

    def queue(self, tx: Tx) -> Callable[[], Recorded]:
        now = self._store.now()
        claimed = [claim_key_in(tx, key, ttl, now) for key, ttl in self._claims]
        check = self._store._record_in(
            tx, self._new, now, self._limits, self._start, self._opt_outs, claimed
        )
        return partial(self._checked, check)

    def _checked(self, check: Callable[[], Recorded]) -> Recorded:
        recorded = check()
        if self._ticket is not None and self._ticket.abandoned:
            raise StoreError("the request was abandoned before it was recorded")
        return recorded

    def settle(self, checked: Recorded) -> Recorded:
        ticket = self._ticket
        if ticket is not None:
            self._store._after_commit(lambda: self._store._settle(ticket, checked))
        return checked

    def unsettled(self, checked: Recorded) -> None:
        """It may have landed, yet the caller hears it failed: expire it."""
        if checked.fresh:
            self._store._abandon(checked.request.id)

    def __call__(self) -> Recorded | None:
        try:
            return super().__call__()
        except Duplicate:
            return None


class RequestQueries(StoreCore):
    """Everything about a request as a whole; its per-recipient sends have their own mixin."""

    def create_request(
        self, new: NewRequest, *, limits: RateLimits | None = None, ticket: Ticket | None = None
    ) -> StoredRequest:
        """Record a request and one queued send per recipient: ``record_request`` without
        claims, opt-outs or a start (a caller that decided those already)."""
        recorded = self.record_request(new, limits=limits, ticket=ticket, opt_outs=False)
        assert recorded is not None  # without claims it is never a duplicate
        return recorded.request

    def recording(
        self,
        new: NewRequest,
        *,
        limits: RateLimits | None = None,
        ticket: Ticket | None = None,
        claims: Sequence[tuple[str, timedelta]] = (),
        start: tuple[str, timedelta] | None = None,
        opt_outs: bool = True,
    ) -> Recording:
        """Record a request and one send per recipient, atomically: one round trip that
        hands back all its delivery needs (``record_request`` runs it alone; on PostgreSQL
        the records queued together share a transaction, see ``Checked``).

        * ``claims`` (key, ttl) are taken in the same transaction (a Slack event's id, the
          signature of the Slack request that asked): None when one is taken already, a
          retry or a replay, and nothing is recorded.
        * With ``opt_outs``, a request every recipient opted out of raises AllOptedOut, and
          nothing is recorded; ``Recorded.opted_out`` says who else did.
        * With ``limits``, counting and inserting happen under one lock per sender and
          recipient, so concurrent processes cannot together exceed a limit (RateLimited).
        * A repeated ``dedupe_key`` hands back the request already recorded, unlimited.
        * With ``start`` (holder, ttl), a request needing no approval is recorded "sending"
          under its lease (``request_lease``), held by ``holder``: the caller delivers it.
        * With ``ticket``, a caller that stopped waiting gets nothing sent (see ``Ticket``).
        """
        if new.kind not in _KINDS:
            raise ValueError(f"unknown request kind {new.kind!r}")
        if not new.recipients:
            raise ValueError("a request needs at least one recipient")
        locks = rate_keys(new.sender, tuple(new.recipients), limits) if limits is not None else ()
        return Recording(self, new, limits, ticket, claims, start, opt_outs, locks)

    record_request = RunAlone(recording)

    def _settle(self, ticket: Ticket, recorded: Recorded) -> None:
        """Hand a committed request over to its caller; expire it if the caller has gone."""
        if not ticket.hand_over(recorded) and recorded.fresh:
            self._abandon(recorded.request.id)

    def _record_in(
        self,
        tx: Tx,
        new: NewRequest,
        now: datetime,
        limits: RateLimits | None,
        start: tuple[str, timedelta] | None,
        opt_outs: bool,
        claimed: Sequence[Pending] = (),
    ) -> Callable[[], Recorded]:
        """``record_request``'s statements, queued in its transaction, and the check that
        reads their answers before the commit: the request recorded, or a refusal that rolls
        all of them back, read in this order: a claim taken, every recipient opted out, a
        limit. A fresh request's statements are all queued before any answer is read (one
        round trip on PostgreSQL for every record queued in the transaction, then the
        commit's)."""
        recipients = tuple(new.recipients)
        numbers = [r.number for r in recipients]
        opt_out_reads = opted_out_later(tx, numbers) if opt_outs else []
        found = []
        if new.dedupe_key is not None:
            found = self._request_where(tx, "r.dedupe_key = ?", (new.dedupe_key,))
        if not found:
            check = (
                None
                if limits is None
                else check_limits_later(tx, new.sender, recipients, limits, now)
            )
            started = start is not None and not new.approval_required
            lease = start if started else None
            inserted = self._insert_records(
                tx, new, now, started=started, alongside=partial(_count_and_lease, tx, now, lease)
            )
            if inserted is not None:
                reads = opt_out_reads if opt_outs else None
                return partial(_fresh, inserted, claimed, numbers, check, reads, started)
            # a concurrent request with the same dedupe key committed first
            found = self._request_where(tx, "r.dedupe_key = ?", (new.dedupe_key,))
        return partial(self._existing, tx, found[0], claimed, numbers, opt_out_reads)

    def _existing(
        self,
        tx: Tx,
        request: StoredRequest,
        claimed: Sequence[Pending],
        numbers: Sequence[str],
        opt_out_reads: Sequence[Pending],
    ) -> Recorded:
        """A request found by its dedupe key, as recorded before (unless a claim was taken)."""
        refuse(claimed, None, numbers, None)
        sends = tuple(self._sends_where(tx, "s.request_id = ?", (request.id,)))
        return Recorded(request, sends, opted_out(opt_out_reads), fresh=False, started=False)

    def _abandon(self, request_id: str) -> None:
        """Expire a request recorded after its caller gave up: the requester was told it
        failed, so neither this process nor a sweeper may send it. The answer's time budget
        is over, so this waits as long as background work does."""
        with answer_within(None):
            try:
                expired = self.transition(
                    request_id,
                    "expired",
                    from_states=["queued", "pending_approval", "sending"],
                    reason=ABANDONED,
                )
            except StoreError:
                logger.error("request %s, refused to its requester, may still be sent", request_id)
                raise
        if expired:
            logger.warning("request %s expired: %s", request_id, ABANDONED)

    def _insert_request(
        self, tx: Tx, new: NewRequest, now: datetime, *, started: bool
    ) -> str | None:
        """Insert the request and its queued sends; its id, or None when its dedupe key is
        already taken. ``started`` records it "sending" (its caller delivers it)."""
        inserted = self._insert_records(tx, new, now, started=started)
        return inserted.request.id if inserted else None

    def _insert_records(
        self,
        tx: Tx,
        new: NewRequest,
        now: datetime,
        *,
        started: bool,
        alongside: Callable[[NewRequest, str], None] | None = None,
    ) -> Inserted | None:
        """``_insert_request``, handing back the rows as inserted (no second read). Without
        a dedupe key nothing can conflict, so nothing is read before the sends are queued,
        and the request's insert rides on theirs (``Tx.along``). ``alongside`` queues the
        writes that go with an inserted request (given it and its id) before its sends, so
        that on PostgreSQL those ride on the sends' insert too."""
        state: RequestState = (
            "pending_approval" if new.approval_required else "sending" if started else "queued"
        )
        request_id = uuid.uuid4().hex
        expires_at = utc(new.expires_at) if new.expires_at is not None else None
        # Requests that name no targets (a ladder's) leave the column out, as schema 5 had it.
        targets = ", targets" if new.targets is not None else ""
        insert = tx.later if new.dedupe_key is not None else tx.along
        inserted = insert(
            "INSERT INTO requests (id, kind, sender, channel_id, thread_ts, response_url, "
            "from_name, from_number, text, segments, encoding, state, created_at, "
            f"updated_at, expires_at, dedupe_key{targets}) "
            f"VALUES ({placeholders(17 if targets else 16)}) "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            (
                request_id,
                new.kind,
                new.sender,
                new.channel_id,
                new.thread_ts,
                new.response_url,
                new.from_name,
                new.from_number,
                new.text,
                new.segments,
                new.encoding,
                state,
                now,
                now,
                expires_at,
                new.dedupe_key,
                *([new.targets] if targets else []),
            ),
        )
        if inserted is not None and not inserted.rows:
            return None
        if alongside is not None:
            alongside(new, request_id)
        inserts = _insert_sends(tx, request_id, tuple(new.recipients), now)
        request = as_recorded(new, request_id, state, now, expires_at)
        return Inserted(request, inserts)

    def get_request(self, request_id: str) -> StoredRequest | None:
        return self._request_by("id", request_id)

    def find_request_by_dedupe_key(self, key: str) -> StoredRequest | None:
        return self._request_by("dedupe_key", key)

    def _request_by(self, column: str, value: str) -> StoredRequest | None:
        """The request whose unique ``column`` (id or dedupe_key) is ``value``, if any."""
        with self._transaction(write=False) as tx:
            found = self._request_where(tx, f"r.{column} = ?", (value,))
        return found[0] if found else None

    def count_in_state(self, state: RequestState) -> int:
        """How many requests are in ``state`` (a metric: no rows are read)."""
        with self._transaction(write=False) as tx:
            row = tx.one("SELECT COUNT(*) FROM requests WHERE state = ?", (state,))
        return int(row[0]) if row else 0

    def requests_in_state(
        self, state: RequestState, *, updated_before: datetime | None = None
    ) -> list[StoredRequest]:
        """Requests left in ``state`` (e.g. approved but never started, after a crash)."""
        where = "r.state = ?"
        params: list[Any] = [state]
        if updated_before is not None:
            where += " AND r.updated_at < ?"
            params.append(utc(updated_before))
        with self._transaction(write=False) as tx:
            return self._request_where(tx, where, params)

    def set_thread(self, request_id: str, channel_id: str, thread_ts: str) -> None:
        """Remember where the request message was posted: its thread is the request's record."""
        with self._transaction(write=True) as tx:
            store_thread_in(tx, request_id, channel_id, thread_ts, self._now())

    def set_approval_message(self, request_id: str, channel_id: str, ts: str) -> None:
        """Remember the approval message, so its buttons can be removed on decision or expiry."""
        with self._transaction(write=True) as tx:
            tx.run(
                "UPDATE requests SET approval_channel = ?, approval_ts = ?, updated_at = ? "
                "WHERE id = ?",
                (channel_id, ts, self._now(), request_id),
            )

    def transition(
        self,
        request_id: str,
        to_state: RequestState,
        *,
        from_states: Collection[RequestState],
        decided_by: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Move a request along one legal edge; True only for the single caller that did it."""
        sources: frozenset[str] = (
            frozenset({from_states}) if isinstance(from_states, str) else frozenset(from_states)
        )
        if to_state not in REQUEST_STATES:
            raise ValueError(f"unknown request state {to_state!r}")
        if not sources:
            raise ValueError("transition needs at least one from_state")
        for source in sorted(sources):
            if source not in REQUEST_STATES:
                raise ValueError(f"unknown request state {source!r}")
            if to_state not in TRANSITIONS[source]:  # type: ignore[index]
                raise ValueError(f"illegal transition {source} -> {to_state}")
        now = self._now()
        assignments = ["state = ?", "updated_at = ?"]
        params: list[Any] = [to_state, now]
        if decided_by is not None or reason is not None:
            assignments.append("decided_at = ?")
            params.append(now)
        if decided_by is not None:
            assignments.append("decided_by = ?")
            params.append(decided_by)
        if reason is not None:
            assignments.append("decision_reason = ?")
            params.append(reason)
        ordered = sorted(sources)
        with self._transaction(write=True) as tx:
            changed = tx.run(
                f"UPDATE requests SET {', '.join(assignments)} "
                f"WHERE id = ? AND state IN ({placeholders(len(ordered))})",
                (*params, request_id, *ordered),
            )
            if changed == 1 and to_state in NOT_COUNTED:
                uncount_request(tx, request_id)
        return changed == 1

    def expired_approvals(self) -> list[StoredRequest]:
        """Pending approvals whose time is up, oldest deadline first."""
        with self._transaction(write=False) as tx:
            return self._request_where(
                tx,
                "r.state = 'pending_approval' AND r.expires_at IS NOT NULL AND r.expires_at <= ?",
                (self._now(),),
                order="r.expires_at, r.created_at",
            )

    def recent_requests(self, sender: str, limit: int = 10) -> list[StoredRequest]:
        """A user's latest requests, newest first (App Home and ``/sms status``)."""
        with self._transaction(write=False) as tx:
            ids = tx.rows(
                "SELECT id FROM requests WHERE sender = ? ORDER BY created_at DESC, id DESC "
                "LIMIT ?",
                (sender, limit),
            )
            found = [self._request_where(tx, "r.id = ?", (rid,)) for (rid,) in ids]
        return [request[0] for request in found if request]

    def audit_rows(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """One row per send with its request (a request without sends gets one row), oldest
        first, with ``AUDIT_COLUMNS``; values are JSON-ready (ISO-8601 UTC times)."""
        where, params = "", []
        if since is not None:
            where, params = "WHERE r.created_at >= ?", [utc(since)]
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT r.id, r.state, "
                + ", ".join(f"r.{c}" for c in _AUDIT_REQUEST_COLUMNS)
                + ", s.id, s.number, s.name, s.state, s.message_id, s.error, s.attempts, "
                "s.claimed_at, s.updated_at, "
                "(SELECT MIN(f.id) FROM sends f WHERE f.request_id = r.id) AS first_send "
                "FROM requests r LEFT JOIN sends s ON s.request_id = r.id "
                f"{where} ORDER BY r.created_at, first_send, r.id, s.id",
                params,
            )
        times = {*REQUEST_TIMES, "claimed_at", "send_updated_at"}
        out: list[dict[str, Any]] = []
        for row in rows:
            record = dict(zip(AUDIT_COLUMNS, row[:-1], strict=True))
            for name in times:
                record[name] = iso(from_db_time(record[name]))
            out.append(record)
        return out
