"""What the reply poller reads and remembers: who was texted, how far each conversation was
read, which inbound SMS were handled, opt-outs (STOP/START) and page acknowledgements."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.core import StoreCore
from bot.store.recording import opted_out_among
from bot.store.records import (
    Acknowledgement,
    InboundMessage,
    OptOut,
    PendingInbound,
    ReplyCursor,
    StoredRequest,
    utcnow,
)
from bot.store.tx import Tx, from_db_time, utc


class ReplyQueries(StoreCore):
    """Inbound SMS and what they lead to; each claim is first-caller-wins across processes."""

    def texted_since(self, since: datetime) -> dict[str, frozenset[str]]:
        """from_number -> the numbers it texted (2Chat was called) since ``since``; empty when
        nothing was sent in the reply window, which is when the poller stays quiet."""
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT DISTINCT r.from_number, s.number FROM sends s "
                "JOIN requests r ON r.id = s.request_id "
                "WHERE s.state IN ('sent', 'unknown') AND s.claimed_at >= ?",
                (utc(since),),
            )
        found: dict[str, set[str]] = {}
        for from_number, number in rows:
            found.setdefault(from_number, set()).add(number)
        return {key: frozenset(numbers) for key, numbers in found.items()}

    def latest_request_to(
        self, number: str, from_number: str, *, since: datetime, until: datetime
    ) -> StoredRequest | None:
        """The request whose SMS to ``number`` from ``from_number`` went out last within
        [since, until]: the thread a reply from that number belongs in."""
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT s.request_id FROM sends s JOIN requests r ON r.id = s.request_id "
                "WHERE s.number = ? AND r.from_number = ? AND s.state IN ('sent', 'unknown') "
                "AND s.claimed_at >= ? AND s.claimed_at <= ? "
                "ORDER BY s.claimed_at DESC, s.id DESC LIMIT 1",
                (number, from_number, utc(since), utc(until)),
            )
            found = self._request_where(tx, "r.id = ?", (row[0],)) if row else []
        return found[0] if found else None

    def reply_cursor(self, channel_uuid: str, contact: str) -> ReplyCursor | None:
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT channel_uuid, contact, marker, last_message_uuid, last_message_ts "
                "FROM reply_cursors WHERE channel_uuid = ? AND contact = ?",
                (channel_uuid, contact),
            )
        if row is None:
            return None
        ts = None if row[4] is None else int(row[4])
        return ReplyCursor(row[0], row[1], row[2], row[3], ts)

    def save_reply_cursor(self, cursor: ReplyCursor) -> None:
        """Remember how far a conversation was read (one row per channel and contact)."""
        with self._transaction(write=True) as tx:
            tx.run(
                "INSERT INTO reply_cursors (channel_uuid, contact, marker, last_message_uuid, "
                "last_message_ts, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel_uuid, contact) DO UPDATE SET marker = excluded.marker, "
                "last_message_uuid = excluded.last_message_uuid, "
                "last_message_ts = excluded.last_message_ts, updated_at = excluded.updated_at",
                (
                    cursor.channel_uuid,
                    cursor.contact,
                    cursor.marker,
                    cursor.last_message_uuid,
                    cursor.last_message_ts,
                    self._now(),
                ),
            )

    def record_inbound(self, message: PendingInbound) -> bool:
        """Record an inbound SMS as pending, before it is acted on; True for the first
        caller only, so no reply is acted on twice however many processes or polls see it.
        ``inbound_handled`` marks it done; until then ``unhandled_inbound`` lists it."""
        pending = json.dumps(
            {
                "from_number": message.from_number,
                "text": message.text,
                "name": message.name,
                "kind": message.kind,
            }
        )
        column_kind = message.kind if message.request_id else f"unknown-{message.kind}"
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO inbound_messages (uuid, channel_uuid, contact, sent_at, "
                "request_id, kind, seen_at, pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (uuid) DO NOTHING RETURNING uuid",
                (
                    message.uuid,
                    message.channel_uuid,
                    message.contact,
                    utc(message.sent_at),
                    message.request_id,
                    column_kind,
                    self._now(),
                    pending,
                ),
            )
        return bool(won)

    def inbound_handled(self, uuid: str) -> None:
        """The SMS was acted on: its text is no longer kept."""
        with self._transaction(write=True) as tx:
            tx.run("UPDATE inbound_messages SET pending = NULL WHERE uuid = ?", (uuid,))

    def inbound_acted(self, uuid: str, note: str | None) -> None:
        """The SMS was acted on but not shown in Slack yet: a later try only posts it, with
        ``note`` (its action counts once)."""
        with self._transaction(write=True) as tx:
            if (row := _still_pending(tx, uuid)) is not None:
                _set_pending(tx, uuid, {**json.loads(row[0]), "acted": True, "note": note})

    def inbound_failed(self, uuid: str, tries: int, retry_at: datetime | None) -> None:
        """Acting on a pending SMS failed for the ``tries``-th time: not tried again before
        ``retry_at``; None gives it up (no longer pending, its kind marked ``failed-``), so
        it costs no poll any more."""
        with self._transaction(write=True) as tx:
            row = _still_pending(tx, uuid)
            if row is None:
                return
            if retry_at is None:
                tx.run(
                    "UPDATE inbound_messages SET pending = NULL, kind = ? WHERE uuid = ?",
                    (f"failed-{row[1]}", uuid),
                )
            else:
                retry = utc(retry_at).isoformat()
                _set_pending(tx, uuid, {**json.loads(row[0]), "tries": tries, "retry_at": retry})

    def unhandled_inbound(self) -> list[PendingInbound]:
        """Inbound SMS recorded and not yet acted on (their process died, or the action
        failed), oldest first."""
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT uuid, channel_uuid, contact, sent_at, request_id, seen_at, pending "
                "FROM inbound_messages WHERE pending IS NOT NULL ORDER BY seen_at, uuid"
            )
        return [_pending(row) for row in rows]

    def inbound_message(self, uuid: str) -> InboundMessage | None:
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT uuid, channel_uuid, contact, sent_at, request_id, kind, seen_at "
                "FROM inbound_messages WHERE uuid = ?",
                (uuid,),
            )
        if row is None:
            return None
        seen_at = from_db_time(row[6])
        assert seen_at is not None
        return InboundMessage(row[0], row[1], row[2], from_db_time(row[3]), row[4], row[5], seen_at)

    # ---- opt-outs

    def opt_out(self, number: str, via: str) -> bool:
        """Put a number on the opt-out list; True when it was not on it already."""
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO opt_outs (number, since, via) VALUES (?, ?, ?) "
                "ON CONFLICT (number) DO NOTHING RETURNING number",
                (number, self._now(), via),
            )
        return bool(won)

    def opt_in(self, number: str) -> bool:
        """Take a number off the opt-out list (it replied START); True when it was on it."""
        with self._transaction(write=True) as tx:
            return tx.run("DELETE FROM opt_outs WHERE number = ?", (number,)) == 1

    def opt_outs(self) -> list[OptOut]:
        """Every opted-out number, longest-standing first."""
        with self._transaction(write=False) as tx:
            rows = tx.rows("SELECT number, since, via FROM opt_outs ORDER BY since, number")
        return [
            OptOut(number, from_db_time(since) or self._now(), via) for number, since, via in rows
        ]

    def opted_out_numbers(self, among: Sequence[str] | None = None) -> frozenset[str]:
        """The opted-out numbers, as data for the send-time checks: only those ``among``
        when given (a send reads its recipients' opt-outs, not the whole table)."""
        with self._transaction(write=False) as tx:
            if among is not None:
                return opted_out_among(tx, among)
            return frozenset(number for (number,) in tx.rows("SELECT number FROM opt_outs"))

    # ---- acknowledgements (pages)

    def acknowledge(
        self, request_id: str, number: str, at: datetime, via: str | None = None
    ) -> bool:
        """Mark a page recipient as having acknowledged; True for the first ack only."""
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO acknowledgements (request_id, number, at, via) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (request_id, number) DO NOTHING RETURNING number",
                (request_id, number, utc(at), via),
            )
        return bool(won)

    def acknowledgements(self, request_id: str) -> list[Acknowledgement]:
        """Who acknowledged a page, in the order they did."""
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT request_id, number, at, via FROM acknowledgements "
                "WHERE request_id = ? ORDER BY at, number",
                (request_id,),
            )
        return [
            Acknowledgement(rid, number, from_db_time(at) or self._now(), via)
            for rid, number, at, via in rows
        ]

    def ack_summary(self, request_id: str) -> tuple[str, str] | None:
        """(channel, ts) of the page's acknowledgement summary reply, once posted."""
        with self._transaction(write=False) as tx:
            row = tx.one(
                "SELECT channel_id, ts FROM ack_summaries WHERE request_id = ?", (request_id,)
            )
        return (row[0], row[1]) if row else None

    def save_ack_summary(self, request_id: str, channel_id: str, ts: str) -> bool:
        """Remember the summary reply so later acks edit it; False if one was already saved."""
        with self._transaction(write=True) as tx:
            won = tx.rows(
                "INSERT INTO ack_summaries (request_id, channel_id, ts) VALUES (?, ?, ?) "
                "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
                (request_id, channel_id, ts),
            )
        return bool(won)


def _still_pending(tx: Tx, uuid: str) -> tuple[Any, ...] | None:
    """(pending details, kind) of an SMS not yet acted on, or None."""
    return tx.one(
        "SELECT pending, kind FROM inbound_messages WHERE uuid = ? AND pending IS NOT NULL",
        (uuid,),
    )


def _set_pending(tx: Tx, uuid: str, details: dict[str, Any]) -> None:
    tx.run("UPDATE inbound_messages SET pending = ? WHERE uuid = ?", (json.dumps(details), uuid))


def _pending(row: Sequence[Any]) -> PendingInbound:
    """A pending inbound row as the SMS it records."""
    uuid, channel_uuid, contact, sent_at, request_id, seen_at, pending = row
    details = json.loads(pending)
    return PendingInbound(
        uuid=uuid,
        channel_uuid=channel_uuid,
        contact=contact,
        from_number=str(details["from_number"]),
        text=str(details["text"]),
        name=details.get("name"),
        kind=str(details["kind"]),
        sent_at=from_db_time(sent_at) or from_db_time(seen_at) or utcnow(),
        request_id=request_id,
        tries=int(details.get("tries", 0)),
        retry_at=from_db_time(details.get("retry_at")),
        acted=bool(details.get("acted", False)),
        note=details.get("note"),
    )
