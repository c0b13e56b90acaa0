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
from dataclasses import dataclass
from datetime import timedelta

from bot.sending.roles import Db
from bot.store.leases import request_lease

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def heartbeat(renew: Callable[[], Awaitable[object]], every: float) -> AsyncIterator[None]:
    """Call ``renew`` every ``every`` seconds while the block runs. A failed renewal is
    logged, not raised: the work goes on, and the worst case is that another process takes
    it over, which the store's conditional updates make safe. Most blocks (a 2Chat call)
    end before the first beat, so the beating task is only started when one is due."""

    async def beat() -> None:
        while True:
            try:
                await renew()
            except Exception as exc:  # a database outage must not cut off a send
                logger.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(every)

    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []
    timer = loop.call_later(every, lambda: started.append(loop.create_task(beat())))
    try:
        yield
    finally:
        timer.cancel()
        for task in started:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class RequestLeases:
    """Per-request leases: held by whichever process runs the request's sends."""

    def __init__(self, db: Db, ttl: timedelta) -> None:
        self._db = db
        self._store = db.store
        self._ttl = ttl

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    @property
    def beat_every(self) -> float:
        """Renew three times per ``ttl``, so one slow renewal does not lose the lease."""
        return self._ttl.total_seconds() / 3

    @staticmethod
    def new_holder() -> str:
        """A fresh holder per use, so even this process's own sweeper cannot take a request
        this process is running."""
        return uuid.uuid4().hex

    @contextlib.asynccontextmanager
    async def hold(self, request_id: str) -> AsyncIterator[Held | None]:
        """Take the request's lease under a fresh holder and keep it renewed; yields None
        (and holds nothing) when another live holder has it."""
        holder = self.new_holder()
        if not await self._db(
            self._store.acquire_lease, request_lease(request_id), holder, self._ttl
        ):
            yield None
            return
        async with self.keep(request_id, holder) as held:
            yield held

    @contextlib.asynccontextmanager
    async def keep(self, request_id: str, holder: str) -> AsyncIterator[Held]:
        """Renew the lease ``holder`` holds while the block runs, then give it up, unless
        a store call gave it up already (``Held.released``: the one that recorded the
        request's outcome in its thread)."""
        db, store = self._db, self._store
        held = Held(holder)
        name = request_lease(request_id)

        async def renew() -> None:
            if not held.released:
                await db(store.acquire_lease, name, holder, self._ttl)

        try:
            async with heartbeat(renew, self.beat_every):
                yield held
        finally:
            try:
                if not held.released:
                    await db(store.release_lease, name, holder)
            except Exception as exc:  # it expires by itself; keep the original error
                logger.warning("cannot release lease %s: %s", name, exc)


@dataclass
class Held:
    """A request lease this process holds; ``released`` once a store call gave it up."""

    holder: str
    released: bool = False
