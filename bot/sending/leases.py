"""Heartbeats that tell a live piece of work from one a dead process left behind.

A process running a request holds the request's lease and renews it, and renews the claim of
each send while its 2Chat call runs. Another process (or this one's sweeper) takes over only
what nobody renewed for a whole ``ttl``, so a crash is recovered from and live work never is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from bot.sending.services import Services

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def heartbeat(renew: Callable[[], Awaitable[object]], every: float) -> AsyncIterator[None]:
    """Call ``renew`` every ``every`` seconds while the block runs. A failed renewal is
    logged, not raised: the work goes on, and the worst case is that another process takes
    it over, which the store's conditional updates make safe."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await renew()
            except Exception as exc:  # a database outage must not cut off a send
                logger.warning("heartbeat failed: %s", exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class RequestLeases:
    """Per-request leases: held by whichever process runs the request's sends."""

    def __init__(self, services: Services, ttl: timedelta) -> None:
        self._services = services
        self._ttl = ttl

    @property
    def beat_every(self) -> float:
        """Renew three times per ``ttl``, so one slow renewal does not lose the lease."""
        return self._ttl.total_seconds() / 3

    @contextlib.asynccontextmanager
    async def hold(self, request_id: str) -> AsyncIterator[bool]:
        """Take the request's lease under a fresh holder and keep it renewed; yields False
        (and holds nothing) when another live holder has it. A fresh holder per use means
        even this process's own sweeper cannot take a request this process is running."""
        db, store = self._services.db, self._services.store
        name, holder = f"request:{request_id}", uuid.uuid4().hex
        if not await db(store.acquire_lease, name, holder, self._ttl):
            yield False
            return
        try:
            async with heartbeat(
                lambda: db(store.acquire_lease, name, holder, self._ttl), self.beat_every
            ):
                yield True
        finally:
            try:
                await db(store.release_lease, name, holder)
            except Exception as exc:  # it expires by itself; keep the original error
                logger.warning("cannot release lease %s: %s", name, exc)
