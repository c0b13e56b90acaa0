"""Readiness: can this process do its job right now? Liveness is just "the loop answers".

Each check is cached so that a probe every few seconds costs next to nothing, and none of
them calls 2Chat: its account state (key rejected, credits exhausted) and whether it can be
reached are learnt from real calls, which the client reports here. Likewise a database that
answers reads but refuses writes (a full disk) is learnt from the store's last write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.errors import SLACK_TOKEN_ERRORS, StoreError
from bot.store import Store

logger = logging.getLogger(__name__)

# 2Chat statuses that mean no send can succeed until an operator acts.
TWOCHAT_ACCOUNT_PROBLEMS = {
    401: "2Chat rejected the API key (HTTP 401): check TWOCHAT_API_KEY",
    402: "2Chat says the account is out of credits (HTTP 402)",
}
# How long a write the database refused (a full disk) keeps the process unready when no
# later write succeeds: long enough to be seen, short enough that with no traffic to retry
# (an unready process gets none) it comes back to try.
WRITE_FAILURE_FOR = 60.0
# How long a refused write is reported even when a later one commits: a small write that
# fits in the file's free pages (a sweep's) must not hide that requests are refused.
WRITE_FAILURE_AT_LEAST = 5.0


@dataclass
class CachedCheck:
    """A check's last answer (None = fine, else the problem) and when it was taken."""

    check: Callable[[], Awaitable[str | None]]
    ttl: float
    problem: str | None = None
    checked_at: float = field(default=-1e18)
    # Callers at the same moment (the log's watch, a probe, a scrape) share one check.
    _checking: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def current(self, now: float) -> str | None:
        async with self._checking:
            if now - self.checked_at >= self.ttl:
                self.problem = await self.check()
                self.checked_at = now
        return self.problem


class Readiness:
    """Collects what is wrong; ``/readyz`` answers 503 naming each problem."""

    def __init__(
        self,
        store: Store,
        slack_check: Callable[[], Awaitable[str | None]],
        *,
        socket_problem: Callable[[], Awaitable[str | None]] | None = None,
        timeout: float = 2.0,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``slack_check`` asks Slack who the bot is (``SlackIdentity.check``);
        ``socket_problem`` says why Socket Mode is down (``SocketModeLink.problem``)."""
        self.store = store
        self.timeout = timeout
        self.clock = clock
        self.twochat_account: str | None = None
        self.twochat_unreachable: str | None = None
        self._socket_problem = socket_problem  # Socket Mode's state, when it is used
        self.database = CachedCheck(self._check_database, ttl)
        self.slack_token = CachedCheck(slack_check, ttl * 30)

    def record_twochat_status(self, status: int) -> None:
        """Called with the HTTP status of every 2Chat answer: 401/402 make the process
        unready until a later call succeeds; any answer shows 2Chat can be reached."""
        self.twochat_unreachable = None
        if status in TWOCHAT_ACCOUNT_PROBLEMS:
            self.twochat_account = TWOCHAT_ACCOUNT_PROBLEMS[status]
        elif 200 <= status < 300:
            self.twochat_account = None

    def record_twochat_unreachable(self, message: str) -> None:
        """A 2Chat call could not connect: unready until 2Chat answers a call again."""
        self.twochat_unreachable = message

    def record_slack_error(self, error: str) -> None:
        """A Slack call failed; a token error forces the next probe to re-check the token."""
        if error in SLACK_TOKEN_ERRORS:
            self.slack_token.checked_at = -1e18

    async def _check_database(self) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.schema_version), self.timeout)
        except TimeoutError:
            return f"the database did not answer within {self.timeout:g}s"
        except StoreError as exc:  # its message names the database, never a password
            return f"the database cannot be reached: {exc}"
        except Exception as exc:  # any driver error means "cannot work"
            return f"the database cannot be reached: {type(exc).__name__}"
        return self._write_problem()

    def _write_problem(self) -> str | None:
        """The last refused write, while it is recent and no write has committed since
        (for ``WRITE_FAILURE_AT_LEAST`` whatever committed since)."""
        failure, wrote_at = self.store.write_failure, self.store.wrote_at
        if failure is None:
            return None
        reason, failed_at = failure
        age = self.clock() - failed_at
        recovered = wrote_at is not None and wrote_at > failed_at
        if age >= WRITE_FAILURE_FOR or (recovered and age >= WRITE_FAILURE_AT_LEAST):
            return None
        return f"the database refuses writes: {reason}"

    async def problems(self) -> dict[str, str]:
        """Each failing component and what is wrong with it; empty when ready."""
        now = self.clock()
        found = {
            "database": await self.database.current(now),
            "slack": await self.slack_token.current(now),
            "twochat": self.twochat_account or self.twochat_unreachable,
        }
        if self._socket_problem is not None:
            found["socket_mode"] = await self._socket_problem()
        return {name: problem for name, problem in found.items() if problem}
