"""People's names as Slack shows them, for mentions that arrive without one.

Slack writes a mention as ``<@U…>`` with no name in message events (and in commands from
clients that leave the label out); the SMS must read "@Dana", never a raw user id. Names
are looked up with ``users.info`` and cached: a name changes far less often than people are
mentioned, and Slack rate-limits the method.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.reporter import SLACK_ERRORS

logger = logging.getLogger(__name__)

NAME_TTL = 3600.0
# Lookups run before Slack's 3-second answer is due: all of a text's names within this, and
# at most LOOKUPS_AT_ONCE at a time (users.info is rate-limited); a name not found by then
# reads "@someone".
LOOKUP_DEADLINE = 1.5
LOOKUPS_AT_ONCE = 8
_LOOKUP_ERRORS = (*SLACK_ERRORS, aiohttp.ClientError)


class SlackNames:
    """Display names by user id (``users.info``), each cached for ``ttl`` seconds."""

    def __init__(self, client: AsyncWebClient, ttl: float = NAME_TTL) -> None:
        self._client = client
        self._ttl = ttl
        self._names: dict[str, tuple[float, str]] = {}
        self._lookups = asyncio.Semaphore(LOOKUPS_AT_ONCE)

    async def names(self, user_ids: Iterable[str]) -> Mapping[str, str]:
        """The names of those users Slack could tell within the deadline; a failed lookup
        is left out (and not cached), so the text reads "@someone" rather than an id."""
        wanted = sorted(set(user_ids))
        missing = [user for user in wanted if self._cached(user) is None]
        try:
            await asyncio.wait_for(
                asyncio.gather(*(self._look_up(user) for user in missing)), LOOKUP_DEADLINE
            )
        except TimeoutError:
            logger.warning("Slack name lookups took over %gs; some read @someone", LOOKUP_DEADLINE)
        return {user: name for user in wanted if (name := self._cached(user)) is not None}

    def _cached(self, user_id: str) -> str | None:
        hit = self._names.get(user_id)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < self._ttl else None

    async def _look_up(self, user_id: str) -> None:
        try:
            async with self._lookups:
                answer = await self._client.users_info(user=user_id)
        except _LOOKUP_ERRORS as exc:
            logger.warning("Slack name lookup for %s failed: %s", user_id, exc)
            return
        name = shown_name(answer.get("user"))
        if name:
            self._names[user_id] = (time.monotonic(), name)


def shown_name(user: object) -> str | None:
    """The name Slack shows for a user: the display name, else the full name, else the
    username (as Slack falls back)."""
    if not isinstance(user, dict):
        return None
    profile = user.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    for name in (
        profile.get("display_name"),
        profile.get("real_name"),
        user.get("real_name"),
        user.get("name"),
    ):
        if isinstance(name, str) and name.strip():
            return name.strip()
    return None
