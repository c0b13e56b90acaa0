"""What the chat surfaces read, asked of the send side rather than of the store.

Listeners (``bot.slack``) never call the store: they ask ``Queries`` for the records they
show, and import the record types from here, so the store's interface can change behind
this module without touching a listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from bot.errors import StoreError
from bot.sending.roles import Db
from bot.store import InboundMessage, OptOut, SendRecord, StoredRequest
from bot.store.core import answer_within
from bot.store.escalations import EscalationRecord, EscalationStep, Texted
from bot.store.intake import TakenIn
from bot.store.leases import ALERT_CLAIM_PREFIX

__all__ = [
    "EscalationRecord",
    "EscalationStep",
    "InboundMessage",
    "KeptEvent",
    "OptOut",
    "Queries",
    "SendRecord",
    "StoredRequest",
    "TakenIn",
    "Texted",
]

T = TypeVar("T")

# How long an event stays claimed against Slack's retries of it.
EVENT_CLAIM = timedelta(days=1)


@dataclass(frozen=True)
class KeptEvent:
    """A page's Slack event as kept until it is paged: its key and what paging it needs."""

    key: str
    event: str


class Queries:
    """Reads for the chat surfaces, each one store call on the store's threads; and the
    claims that make a delivered event count once."""

    def __init__(self, db: Db, *, answer_deadline: float) -> None:
        self._db = db
        self._store = db.store
        self._answer_deadline = answer_deadline

    async def request(self, request_id: str) -> StoredRequest | None:
        return await self._db(self._store.get_request, request_id)

    async def sends(self, request_id: str) -> list[SendRecord]:
        return await self._db(self._store.sends, request_id)

    async def recent_requests(self, sender: str, limit: int) -> list[StoredRequest]:
        return await self._db(self._store.recent_requests, sender, limit)

    async def awaiting_approval(self) -> list[StoredRequest]:
        """Requests waiting for a decision that have not expired yet."""
        now = self._store.now()
        pending = await self._db(self._store.requests_in_state, "pending_approval")
        return [
            request for request in pending if request.expires_at is None or request.expires_at > now
        ]

    async def opt_outs(self) -> list[OptOut]:
        return await self._db(self._store.opt_outs)

    async def opt_outs_before_answer(self) -> list[OptOut]:
        """``opt_outs`` while Slack waits for the answer (``/sms help``): StoreError rather
        than a wait Slack would time out on."""
        seconds = self._answer_deadline
        try:
            return await self.before_answer(seconds, self.opt_outs)
        except TimeoutError:
            raise StoreError(f"the database did not answer within {seconds:g}s") from None

    @staticmethod
    async def before_answer(seconds: float, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` while Slack waits for the answer: its store calls go before background
        ones and get ``seconds`` in all; StoreError or TimeoutError past them."""
        async with asyncio.timeout(seconds):
            with answer_within(seconds):
                return await call()

    async def escalation_on_board(self, channel_id: str, ts: str) -> EscalationRecord | None:
        return await self._db(self._store.escalation_on_board, channel_id, ts)

    async def hold_alert_event(
        self, dedupe_key: str, holder: str, ttl: timedelta, kept: KeptEvent
    ) -> bool:
        """Claim an alert's event for ``holder`` (a process) as a lease, and keep the event
        until it is paged: True for the holder the database saw first, and again for that
        holder when it asks again."""
        name = f"{ALERT_CLAIM_PREFIX}{dedupe_key}"
        store = self._store
        return await self._db(store.claim_page_event, name, holder, ttl, kept.key, kept.event)

    async def keep_page_event(self, kept: KeptEvent) -> None:
        """Keep a page's event from before Slack is answered until ``page_event_done``."""
        await self._db(self._store.keep_page_event, kept.key, kept.event)

    async def renew_page_event(self, key: str) -> None:
        """The page of this event is still under way here (see ``undone_page_events``)."""
        await self._db(self._store.renew_page_event, key)

    async def page_event_done(self, key: str) -> None:
        await self._db(self._store.page_event_done, key)

    async def undone_page_events(self, before: datetime) -> list[TakenIn]:
        return await self._db(self._store.undone_page_events, before)

    async def page_recorded_for(self, event_key: str) -> bool:
        return await self._db(self._store.page_recorded_for, event_key)

    async def take_over_page_event(self, found: TakenIn) -> bool:
        return await self._db(self._store.take_over_page_event, found)

    async def claim_once(self, key: str, ttl: timedelta = EVENT_CLAIM) -> bool:
        """True the first time ``key`` is claimed within ``ttl`` in any process."""
        return await self._db(self._store.claim_key, key, ttl)

    async def claim_alert(self, key: str, event_key: str, window: timedelta) -> bool:
        """True for the first alert event to claim the alert ``key`` within ``window`` in
        any process, and again for that event (its page taken over after a crash)."""
        return await self._db(self._store.acquire_lease, _alert_text(key), event_key, window)

    async def release_alert(self, key: str, event_key: str) -> None:
        """Give an alert's claim back, so the next identical alert pages again."""
        await self._db(self._store.release_lease, _alert_text(key), event_key)


def _alert_text(key: str) -> str:
    """The lease an alert's text is claimed by (expired ones go with the history)."""
    return f"{ALERT_CLAIM_PREFIX}text:{key}"
