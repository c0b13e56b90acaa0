"""Slack's pace for editing messages: about one ``chat.update`` a second in a channel.

A page's live progress reply and its pager board are edited in the same channel, often
at the same moment; one pacer per process spaces all of them, so neither is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

# A little over Slack's second, so clock jitter never makes two edits look too close.
EDIT_SPACING = 1.1


class EditPace:
    """Per-channel turns for message edits, ``spacing`` seconds apart."""

    def __init__(self, spacing: float = EDIT_SPACING) -> None:
        self._spacing = spacing
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    def ready(self, channel: str) -> bool:
        """Whether an edit could go at once: for edits that may simply be skipped."""
        lock = self._locks.get(channel)
        idle = lock is None or not lock.locked()
        return idle and time.monotonic() >= self._last.get(channel, 0.0) + self._spacing

    @contextlib.asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        """Wait for the channel's next edit slot; the edit is made inside the block."""
        async with self._locks.setdefault(channel, asyncio.Lock()):
            wait = self._last.get(channel, 0.0) + self._spacing - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                self._last[channel] = time.monotonic()
