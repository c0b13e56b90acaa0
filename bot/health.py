"""Readiness: can this process do its job right now? Liveness is just "the loop answers".

Each check is cached so that a probe every few seconds costs next to nothing, and none of
them calls 2Chat: its account state (key rejected, credits exhausted) is learnt from the
answers to real sends, which the client reports here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import Store

logger = logging.getLogger(__name__)

# 2Chat statuses that mean no send can succeed until an operator acts.
TWOCHAT_ACCOUNT_PROBLEMS = {
    401: "2Chat rejected the API key (HTTP 401): check TWOCHAT_API_KEY",
    402: "2Chat says the account is out of credits (HTTP 402)",
}
SLACK_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"}
)


@dataclass
class CachedCheck:
    """A check's last answer (None = fine, else the problem) and when it was taken."""

    check: Callable[[], Awaitable[str | None]]
    ttl: float
    problem: str | None = None
    checked_at: float = field(default=-1e18)

    async def current(self, now: float) -> str | None:
        if now - self.checked_at >= self.ttl:
            self.problem = await self.check()
            self.checked_at = now
        return self.problem


class Readiness:
    """Collects what is wrong; ``/readyz`` answers 503 naming each problem."""

    def __init__(
        self,
        store: Store,
        slack: AsyncWebClient,
        *,
        timeout: float = 2.0,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.slack = slack
        self.timeout = timeout
        self.clock = clock
        self.twochat_problem: str | None = None
        self.socket_connected: Callable[[], Awaitable[bool]] | None = None
        self.database = CachedCheck(self._check_database, ttl)
        self.slack_token = CachedCheck(self._check_slack, ttl * 30)

    def record_twochat_status(self, status: int) -> None:
        """Called with the HTTP status of every 2Chat answer: 401/402 make the process
        unready until a later call succeeds."""
        if status in TWOCHAT_ACCOUNT_PROBLEMS:
            self.twochat_problem = TWOCHAT_ACCOUNT_PROBLEMS[status]
        elif 200 <= status < 300:
            self.twochat_problem = None

    def record_slack_error(self, error: str) -> None:
        """A Slack call failed; a token error forces the next probe to re-check the token."""
        if error in SLACK_TOKEN_ERRORS:
            self.slack_token.checked_at = -1e18

    async def _check_database(self) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.schema_version), self.timeout)
        except TimeoutError:
            return f"the database did not answer within {self.timeout:g}s"
        except Exception as exc:  # any driver error means "cannot work"
            return f"the database cannot be reached: {type(exc).__name__}"
        return None

    async def _check_slack(self) -> str | None:
        try:
            await asyncio.wait_for(self.slack.auth_test(), self.timeout)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            if error in SLACK_TOKEN_ERRORS:
                return f"Slack rejected the bot token ({error}): check SLACK_BOT_TOKEN"
            return f"Slack auth.test failed ({error})"
        except (SlackClientError, OSError, TimeoutError) as exc:
            return f"Slack cannot be reached: {type(exc).__name__}"
        return None

    async def problems(self) -> dict[str, str]:
        """Each failing component and what is wrong with it; empty when ready."""
        now = self.clock()
        found = {
            "database": await self.database.current(now),
            "slack": await self.slack_token.current(now),
            "twochat": self.twochat_problem,
        }
        if self.socket_connected is not None and not await self.socket_connected():
            found["socket_mode"] = "the Socket Mode connection to Slack is down"
        return {name: problem for name, problem in found.items() if problem}
