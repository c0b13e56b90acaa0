"""Crash recovery: what a stopped process left half done is finished or reported.

Safe to run in every process at once: each step is a conditional update in the store that
only one sweeper wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.errors import BridgeError
from bot.sending.approvals import Approvals
from bot.sending.escalation import Ladders
from bot.sending.from_records import UNKNOWN_AFTER_CRASH
from bot.sending.roles import Db, PolicySource, Wording
from bot.sending.sends import Delivery

logger = logging.getLogger(__name__)

# Retention is days long; purging every ten minutes is plenty and keeps sweeps cheap.
PURGE_EVERY = 600.0


class Sweeper:
    """Expires approvals, finishes requests whose process stopped mid-way, pages what a
    crash cut off before it was recorded, reports sends a crash left in flight, resumes
    requests that were recorded but never started, starts the ladders the database failed
    to start, and texts the next tier of escalating pages whose wait ran out."""

    def __init__(
        self,
        db: Db,
        policy: PolicySource,
        words: Wording,
        delivery: Delivery,
        approvals: Approvals,
        ladders: Ladders,
        stale_after: timedelta,
        resume_pages: Callable[[datetime], Awaitable[None]],
    ) -> None:
        """``resume_pages(cutoff)`` pages what the chat surface took in before ``cutoff``
        and a crash kept from being recorded (``bot.slack.listeners.paging``)."""
        self._db, self._store = db, db.store
        self._policy = policy
        self._words = words
        self._ladders = ladders
        self._delivery = delivery
        self._approvals = approvals
        self._stale_after = stale_after
        self._resume_pages = resume_pages
        self._purged_at = -PURGE_EVERY

    async def sweep(self) -> None:
        """One pass over everything that may be left behind. Sends 2Chat accepted that are
        not recorded yet come first (until they are, nothing else is swept); then each step
        runs even when another fails, so no fault in one (a bad row, a bug) stops tiers,
        crash recovery or approval expiry."""
        await self._delivery.record_held()
        cutoff = self._store.now() - self._stale_after
        steps: list[Callable[[], Awaitable[None]]] = [
            self._approvals.expire_overdue,
            functools.partial(self._take_over_abandoned, cutoff),
            functools.partial(self._resume_pages, cutoff),
            functools.partial(self._report_stale_sends, cutoff),
            functools.partial(self._resume, cutoff),
            functools.partial(self._ladders.start_missed, cutoff),
            self._ladders.fire_due,
            self._post_owed_reports,
            self._purge_history,
        ]
        for step in steps:
            try:
                await step()
            except (BridgeError, OSError) as exc:
                logger.warning("sweep: %s failed, will retry: %s", _name(step), exc)
            except Exception:
                logger.exception(
                    "sweep: %s failed unexpectedly; the other steps go on", _name(step)
                )

    async def _post_owed_reports(self) -> None:
        for request in await self._db(self._store.pending_reports):
            await self._delivery.post_owed_report(request.id)

    async def _purge_history(self) -> None:
        """Delete what ``retention.keep`` no longer covers, at most every PURGE_EVERY
        seconds per process (each batch is a short transaction of its own)."""
        if time.monotonic() - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = time.monotonic()
        store = self._store
        cutoff = store.now() - self._policy().retention.keep
        purged = await self._db(store.purge_before, cutoff)
        if purged:
            logger.info("retention: purged %d requests older than %s", purged, cutoff)

    async def _take_over_abandoned(self, cutoff: datetime) -> None:
        """Requests "sending" whose process stopped (nobody renews their lease) are finished
        here: a paced page killed mid-way still reaches the people it had not reached yet."""
        for request in await self._db(
            self._store.requests_in_state, "sending", updated_before=cutoff
        ):
            await self._delivery.resume(request.id, around=self._ladders.escalating)

    async def _report_stale_sends(self, cutoff: datetime) -> None:
        """A send "sending" since before ``cutoff`` was cut off by a crash: 2Chat may or may
        not have it, so it becomes "unknown" with a Retry button, never re-sent by itself."""
        store = self._store
        for send in await self._db(store.stale_sends, cutoff):
            if await self._db(
                store.mark_unknown, send.id, UNKNOWN_AFTER_CRASH, claimed_before=cutoff
            ):
                request = await self._db(store.get_request, send.request_id)
                if request is not None:
                    context = self._words.describe(request)
                    await self._delivery.report(request, request.thread_ts, context, only={send.id})
                    await self._db(store.complete_request_if_done, request.id)

    async def _resume(self, cutoff: datetime) -> None:
        """Deliver requests left queued or approved since before ``cutoff``."""
        for state in ("queued", "approved"):
            for request in await self._db(
                self._store.requests_in_state, state, updated_before=cutoff
            ):
                await self._delivery.deliver(request.id)

    async def sweep_forever(self, interval: float, stop: asyncio.Event) -> None:
        """Sweep every ``interval`` until ``stop``; a sweep in progress is finished, never
        cut off mid-send, so shutdown cannot strand a send it started."""
        while not stop.is_set():
            try:
                await self.sweep()
            except (BridgeError, OSError) as exc:
                logger.warning("sweep failed, will retry: %s", exc)
            except Exception:  # nothing may stop the sweeper
                logger.exception("sweep failed unexpectedly, will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


def _name(step: Callable[[], Awaitable[None]]) -> str:
    func = step.func if isinstance(step, functools.partial) else step
    return getattr(func, "__name__", repr(func))
