"""Escalation ladders in the store: their timers, reply codes, acks and history.

Every move of a ladder is one conditional ``UPDATE ... WHERE state = 'open' AND tier = ?
AND round = ?``, committed together with the request it sends, so of several sweepers,
processes or clickers exactly one moves it, and a crash leaves either both or neither:
a recorded tier request is then sent by the sweeper like any queued request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.core.escalation import CODE_QUIET, REQUEST_KEY_PREFIX, code_suffix, free_codes
from bot.errors import StoreError
from bot.store.records import NewRecipient, NewRequest, StoredRequest
from bot.store.requests import RequestQueries
from bot.store.tx import Tx, from_db_time, iso, row_values, utc

EscalationState = Literal["open", "acked", "stopped", "exhausted"]
_COLUMNS = (
    "id",
    "name",
    "channel_id",
    "thread_ts",
    "code",
    "state",
    "tier",
    "round",
    "next_tier_at",
    "acked_by",
    "acked_via",
    "acked_at",
    "closed_by",
    "board_ts",
    "created_at",
)
_TIMES = ("next_tier_at", "acked_at", "created_at")
_SELECT = "SELECT " + ", ".join(f"e.{c}" for c in _COLUMNS) + " FROM escalations e"
# Sends that reached (or may have reached) 2Chat: those people were texted.
_TEXTED = "s.state IN ('sent', 'unknown', 'sending')"


@dataclass(frozen=True)
class EscalationRecord:
    """One escalating page as stored; ``id`` is the page's request id, ``tier`` and
    ``round`` the rung texted last (0-based)."""

    id: str
    name: str
    channel_id: str
    thread_ts: str | None
    code: str
    state: EscalationState
    tier: int
    round: int
    next_tier_at: datetime | None
    acked_by: str | None
    acked_via: str | None
    acked_at: datetime | None
    closed_by: str | None
    board_ts: str | None
    created_at: datetime


@dataclass(frozen=True)
class EscalationStep:
    """One thing a ladder did: a tier texted, an ack (the winning or a late one), a stop."""

    kind: str  # tier | ack | late_ack | stop | exhausted
    at: datetime
    tier: int | None
    round: int | None
    request_id: str | None
    actor: str | None
    via: str | None


@dataclass(frozen=True)
class Texted:
    """Someone a ladder texted, when, and at which rung."""

    number: str
    name: str | None
    at: datetime | None
    tier: int
    round: int


@dataclass(frozen=True)
class Climb:
    """A move up the ladder: to ``step`` (None: the ladder is exhausted), texting ``send``
    (None when the rung reaches nobody), due again at ``next_at``."""

    step: tuple[int, int] | None
    send: NewRequest | None
    next_at: datetime | None
    actor: str | None = None


# Builds the "acked" SMS to the people texted (the acker left out); None sends nothing.
AckedSms = Callable[[list[NewRecipient]], NewRequest | None]


class EscalationQueries(RequestQueries):
    """Ladders; each move is won by exactly one caller."""

    def reserve_code(self) -> str:
        """A reply code no open page uses and none issued in the last 72 hours (the
        shortest free one); the conditional insert keeps two processes from sharing one."""
        now = self._now()
        with self._transaction(write=True) as tx:
            busy = {
                code
                for (code,) in tx.rows(
                    "SELECT code FROM escalation_codes WHERE issued_at > ? "
                    "UNION SELECT code FROM escalations WHERE state = 'open'",
                    (now - CODE_QUIET,),
                )
            }
            for code in free_codes(busy):
                if tx.rows(
                    "INSERT INTO escalation_codes (code, issued_at) VALUES (?, ?) "
                    "ON CONFLICT (code) DO UPDATE SET issued_at = excluded.issued_at "
                    "WHERE escalation_codes.issued_at <= ? AND NOT EXISTS (SELECT 1 FROM "
                    "escalations e WHERE e.code = escalation_codes.code AND e.state = 'open') "
                    "RETURNING code",
                    (code, now, now - CODE_QUIET),
                ):
                    return code
        raise StoreError("no free escalation reply code; too many pages are open")

    def release_code(self, code: str) -> None:
        """Give back a code reserved for a page that was then refused: no ladder started
        with it since it was issued, so nobody can have been texted it."""
        with self._transaction(write=True) as tx:
            tx.run(
                "DELETE FROM escalation_codes WHERE code = ? AND NOT EXISTS (SELECT 1 FROM "
                "escalations e WHERE e.code = escalation_codes.code "
                "AND e.created_at >= escalation_codes.issued_at)",
                (code,),
            )

    def open_escalation(
        self, request_id: str, name: str, code: str, next_tier_at: datetime
    ) -> bool:
        """Start the ladder of a recorded page (its request is tier 1); False when it was
        started already (a redelivered Slack event)."""
        now = self._now()
        with self._transaction(write=True) as tx:
            row = tx.one("SELECT channel_id, thread_ts FROM requests WHERE id = ?", (request_id,))
            if row is None:
                raise ValueError(f"no request {request_id}")
            won = tx.rows(
                "INSERT INTO escalations (id, name, channel_id, thread_ts, code, state, tier, "
                "round, next_tier_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'open', 0, 0, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                (request_id, name, row[0], row[1], code, utc(next_tier_at), now, now),
            )
            if won:
                self._step(tx, request_id, "tier", tier=0, round_=0, request_id=request_id)
        return bool(won)

    def pages_without_ladder(self, before: datetime, since: datetime) -> list[StoredRequest]:
        """Pages that carry a reply code, last changed between ``since`` and ``before``,
        whose ladder never started: the database failed as it was to start, and the page
        went out regardless (a tier of a ladder is not one)."""
        with self._transaction(write=False) as tx:
            return self._request_where(
                tx,
                "r.state IN ('sending', 'completed') AND r.updated_at < ? AND r.updated_at >= ? "
                "AND r.kind = 'page' AND r.text LIKE ? "
                "AND (r.dedupe_key IS NULL OR r.dedupe_key NOT LIKE ?) "
                "AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.id = r.id)",
                (utc(before), utc(since), f"%{code_suffix('%')}", f"{REQUEST_KEY_PREFIX}%"),
            )

    def get_escalation(self, escalation_id: str) -> EscalationRecord | None:
        found = self._escalations("e.id = ?", (escalation_id,))
        return found[0] if found else None

    def escalation_on_board(self, channel_id: str, ts: str) -> EscalationRecord | None:
        """The ladder whose board is the message ``ts`` in ``channel_id`` (reactions)."""
        found = self._escalations("e.channel_id = ? AND e.board_ts = ?", (channel_id, ts))
        return found[0] if found else None

    def due_escalations(self) -> list[EscalationRecord]:
        """Open ladders whose next tier is due now, the longest overdue first."""
        return self._escalations(
            "e.state = 'open' AND e.next_tier_at <= ?", (self._now(),), order="e.next_tier_at"
        )

    def open_escalations_to(self, number: str) -> list[EscalationRecord]:
        """Open ladders that have texted ``number``: its plain "ok" acks the one it has."""
        return self._escalations(
            f"e.state = 'open' AND e.id IN (SELECT t.escalation_id FROM escalation_steps t "
            f"JOIN sends s ON s.request_id = t.request_id WHERE t.kind = 'tier' "
            f"AND s.number = ? AND {_TEXTED})",
            (number,),
        )

    def escalations_with_code(self, code: str, number: str) -> list[EscalationRecord]:
        """Ladders with reply code ``code`` that texted ``number``: the open one first."""
        return self._escalations(
            f"e.code = ? AND e.id IN (SELECT t.escalation_id FROM escalation_steps t "
            f"JOIN sends s ON s.request_id = t.request_id WHERE t.kind = 'tier' "
            f"AND s.number = ? AND {_TEXTED})",
            (code, number),
            order="CASE WHEN e.state = 'open' THEN 0 ELSE 1 END, e.created_at DESC",
        )

    def open_escalation_count(self) -> int:
        """How many escalating pages await their ack (a metric)."""
        with self._transaction(write=False) as tx:
            row = tx.one("SELECT COUNT(*) FROM escalations WHERE state = 'open'")
        return int(row[0]) if row else 0

    def any_open_escalation(self) -> bool:
        """Whether a page awaits its ack (replies are then polled faster)."""
        with self._transaction(write=False) as tx:
            return tx.one("SELECT 1 FROM escalations WHERE state = 'open' LIMIT 1") is not None

    def climb(self, escalation: EscalationRecord, move: Climb) -> str | None:
        """Move an open ladder from the rung it is on, recording the rung's request with it;
        the request's id (or "" when the move sent nothing) for the single winner, else
        None."""
        now = self._now()
        state = "open" if move.step is not None else "exhausted"
        tier, round_ = move.step or (escalation.tier, escalation.round)
        next_at = utc(move.next_at) if move.next_at is not None else None
        with self._transaction(write=True) as tx:
            changed = tx.run(
                "UPDATE escalations SET state = ?, tier = ?, round = ?, next_tier_at = ?, "
                "updated_at = ? WHERE id = ? AND state = 'open' AND tier = ? AND round = ?",
                (
                    state,
                    tier,
                    round_,
                    next_at,
                    now,
                    escalation.id,
                    escalation.tier,
                    escalation.round,
                ),
            )
            if changed != 1:
                return None
            request_id = None
            if move.send is not None:
                request_id = self._insert_request(tx, move.send, now, started=False)
            kind = "tier" if move.step is not None else "exhausted"
            self._step(
                tx,
                escalation.id,
                kind,
                tier=tier,
                round_=round_,
                request_id=request_id,
                actor=move.actor,
            )
        return request_id or ""

    def ack_escalation(
        self, escalation_id: str, actor: str, via: str, acked_sms: AckedSms, number: str | None
    ) -> tuple[bool, str | None]:
        """Acknowledge a ladder: (True, the "acked" SMS request's id or None) for the first
        ack only, which stops the ladder; a later one is recorded as late: (False, None)."""
        now = self._now()
        with self._transaction(write=True) as tx:
            won = tx.run(
                "UPDATE escalations SET state = 'acked', next_tier_at = NULL, acked_by = ?, "
                "acked_via = ?, acked_at = ?, updated_at = ? WHERE id = ? AND state = 'open'",
                (actor, via, now, now, escalation_id),
            )
            if won != 1:
                if tx.one("SELECT 1 FROM escalations WHERE id = ?", (escalation_id,)):
                    self._step(tx, escalation_id, "late_ack", actor=actor, via=via)
                return False, None
            self._step(tx, escalation_id, "ack", actor=actor, via=via)
            texted = [
                NewRecipient(t.number, t.name)
                for t in self._texted(tx, escalation_id)
                if t.number != number
            ]
            new = acked_sms(list({r.number: r for r in texted}.values())) if texted else None
            request_id = self._insert_request(tx, new, now, started=False) if new else None
        return True, request_id

    def stop_escalation(self, escalation_id: str, user: str) -> bool:
        """Stop an open ladder without an ack; True for the single caller that did."""
        now = self._now()
        with self._transaction(write=True) as tx:
            won = tx.run(
                "UPDATE escalations SET state = 'stopped', next_tier_at = NULL, closed_by = ?, "
                "updated_at = ? WHERE id = ? AND state = 'open'",
                (user, now, escalation_id),
            )
            if won == 1:
                self._step(tx, escalation_id, "stop", actor=user)
        return won == 1

    def set_board(self, escalation_id: str, ts: str) -> bool:
        """Remember the board message; False when another process posted one first."""
        with self._transaction(write=True) as tx:
            return (
                tx.run(
                    "UPDATE escalations SET board_ts = ? WHERE id = ? AND board_ts IS NULL",
                    (ts, escalation_id),
                )
                == 1
            )

    def escalation_steps(self, escalation_id: str) -> list[EscalationStep]:
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT kind, at, tier, round, request_id, actor, via FROM escalation_steps "
                "WHERE escalation_id = ? ORDER BY id",
                (escalation_id,),
            )
        return [
            EscalationStep(kind, from_db_time(at) or self._now(), tier, rnd, rid, actor, via)
            for kind, at, tier, rnd, rid, actor, via in rows
        ]

    def texted_by(self, escalation_id: str) -> list[Texted]:
        """Everyone the ladder texted, in the order they were."""
        with self._transaction(write=False) as tx:
            return self._texted(tx, escalation_id)

    def escalation_audit_rows(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Every ladder step, oldest first, JSON-ready, for the audit export; ``request_id``
        is the escalating page's, ``step_request_id`` the request a step sent (a tier's)."""
        where, params = "", []
        if since is not None:
            where, params = "WHERE t.at >= ?", [utc(since)]
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT e.id, e.name, e.channel_id, e.code, t.at, t.kind, t.tier, t.round, "
                "t.request_id, t.actor, t.via FROM escalation_steps t "
                f"JOIN escalations e ON e.id = t.escalation_id {where} ORDER BY t.at, t.id",
                params,
            )
        names = "request_id escalation channel_id code step_at step tier round step_request_id "
        names += "actor via"
        out = [dict(zip(names.split(), row, strict=True)) for row in rows]
        for record in out:
            record["step_at"] = iso(from_db_time(record["step_at"]))
        return out

    # ---- helpers

    def _escalations(
        self, where: str, params: tuple[Any, ...], *, order: str = "e.created_at"
    ) -> list[EscalationRecord]:
        with self._transaction(write=False) as tx:
            rows = tx.rows(f"{_SELECT} WHERE {where} ORDER BY {order}", params)
        return [EscalationRecord(**row_values(row, _COLUMNS, _TIMES)) for row in rows]

    def _texted(self, tx: Tx, escalation_id: str) -> list[Texted]:
        rows = tx.rows(
            "SELECT s.number, s.name, s.claimed_at, t.tier, t.round FROM escalation_steps t "
            "JOIN sends s ON s.request_id = t.request_id "
            f"WHERE t.escalation_id = ? AND t.kind = 'tier' AND {_TEXTED} ORDER BY t.id, s.id",
            (escalation_id,),
        )
        return [Texted(n, name, from_db_time(at), tier, rnd) for n, name, at, tier, rnd in rows]

    def _step(
        self,
        tx: Tx,
        escalation_id: str,
        kind: str,
        *,
        tier: int | None = None,
        round_: int | None = None,
        request_id: str | None = None,
        actor: str | None = None,
        via: str | None = None,
    ) -> None:
        tx.run(
            "INSERT INTO escalation_steps (escalation_id, at, kind, tier, round, request_id, "
            "actor, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (escalation_id, self._now(), kind, tier, round_, request_id, actor, via),
        )
