"""2Chat's per-minute limit as the account has it (GET /open/info), for the pacer.

Read at start-up when the policy sets no limit, again on a reload that drops the policy's,
and again when 2Chat answers 429 or 402 (a trial ended, a plan changed): at most once a
minute then, as the read costs a credit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.errors import BridgeError
from bot.sms.budget import RatePacer
from bot.sms.twochat import TwoChatClient

logger = logging.getLogger(__name__)

# The least time between two reads of 2Chat's limit after 429s or 402s.
RELEARN_EVERY = 60.0

Spawn = Callable[[Coroutine[Any, Any, None]], object]


class LimitLearner:
    """Reads the account's limit with ``twochat`` and paces ``pacer`` under it; a read
    asked for from a 2Chat answer runs in the background, started by ``spawn``."""

    def __init__(
        self,
        twochat: TwoChatClient,
        pacer: RatePacer,
        spawn: Spawn,
        *,
        every: float = RELEARN_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._twochat = twochat
        self._pacer = pacer
        self._spawn = spawn
        self._every = every
        self._clock = clock
        self._relearned_at = -every

    async def learn(self) -> None:
        """Pace 2Chat calls under the account's own per-minute limit (GET /open/info, a call
        the budget counts like any other), and share it with every process."""
        try:
            per_minute = await self._twochat.requests_per_minute()
        except BridgeError as exc:
            logger.warning("could not read 2Chat's rate limit, %s: %s", self._meanwhile(), exc)
            return
        if per_minute:
            await self._pacer.learn(per_minute)
        else:
            logger.warning("2Chat did not say the account's rate limit, %s", self._meanwhile())

    def _meanwhile(self) -> str:
        """How 2Chat calls are paced while the account's limit is not known."""
        return f"pacing under {self._pacer.per_minute} per minute meanwhile"

    def relearn(self) -> None:
        """2Chat answered 429 or 402: its limit may have changed, so read it again; at
        most once every ``every`` seconds."""
        if self._clock() - self._relearned_at >= self._every:
            self._relearned_at = self._clock()
            self._spawn(self.learn())
