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
# Lookups run before Slack's 3-second answer is due; a slower one falls back to "someone".
LOOKUP_DEADLINE = 1.5
_LOOKUP_ERRORS = (*SLACK_ERRORS, aiohttp.ClientError, TimeoutError)


class SlackNames:
    """Display names by user id (``users.info``), each cached for ``ttl`` seconds."""

    def __init__(self, client: AsyncWebClient, ttl: float = NAME_TTL) -> None:
        self._client = client
        self._ttl = ttl
        self._names: dict[str, tuple[float, str]] = {}

    async def names(self, user_ids: Iterable[str]) -> Mapping[str, str]:
        """The names of those users Slack could tell; a failed lookup is left out (and not
        cached), so the text reads "@someone" rather than an id."""
        wanted = sorted(set(user_ids))
        found = await asyncio.gather(*(self._name(user) for user in wanted))
        return {user: name for user, name in zip(wanted, found, strict=True) if name}

    async def _name(self, user_id: str) -> str | None:
        now = time.monotonic()
        hit = self._names.get(user_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            answer = await asyncio.wait_for(self._client.users_info(user=user_id), LOOKUP_DEADLINE)
        except _LOOKUP_ERRORS as exc:
            logger.warning("Slack name lookup for %s failed: %s", user_id, exc)
            return None
        name = shown_name(answer.get("user"))
        if name:
            self._names[user_id] = (now, name)
        return name


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
