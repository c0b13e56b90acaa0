"""Who the bot is in Slack (``auth.test``), asked once and kept.

Bolt's own single-workspace authorization calls ``auth.test`` before every request until
one succeeds, so with Slack unreachable every request, ``/sms help`` included, waited for
that call and got a 500. Here the answer is learnt at start-up and re-checked by readiness;
requests are authorized from what is known, at once, whether or not Slack answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SLACK_TOKEN_ERRORS


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code; "unknown" when the answer was no JSON (a proxy's error page)."""
    data = exc.response.data
    error = data.get("error") if isinstance(data, dict) else None
    return str(error or "unknown")


def unreachable(exc: BaseException, timeout: float) -> str:
    """Why a Slack call got no answer, in the operator's terms (not "TimeoutError")."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"Slack cannot be reached at {exc.host}:{exc.port}: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return f"Slack did not answer auth.test within {timeout:g}s"
    return f"Slack cannot be reached: {type(exc).__name__}"


class SlackIdentity:
    """The bot's user id, bot id and workspace from ``auth.test``; ``authorize`` is Bolt's."""

    def __init__(self, client: AsyncWebClient, timeout: float = 2.0) -> None:
        """``client`` should not retry: readiness wants the answer within ``timeout``."""
        self.client = client
        self.timeout = timeout
        self.known: dict[str, Any] = {}
        self.scopes: str | None = None

    async def check(self) -> str | None:
        """Ask Slack who the bot is; the problem, or None (and the answer kept)."""
        try:
            response = await asyncio.wait_for(self.client.auth_test(), self.timeout)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in SLACK_TOKEN_ERRORS:
                return f"Slack rejected the bot token ({error}): check SLACK_BOT_TOKEN"
            return f"Slack auth.test failed (HTTP {exc.response.status_code}, {error})"
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            return unreachable(exc, self.timeout)
        self.known = dict(response.data) if isinstance(response.data, dict) else {}
        self.scopes = response.headers.get("x-oauth-scopes")
        return None

    async def authorize(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        """Bolt's authorization, from what ``check`` learnt; before Slack ever answered,
        the bot token alone (the bot's own ids unknown), which is all an answer needs."""
        known = self.known
        return AuthorizeResult(
            enterprise_id=known.get("enterprise_id") or enterprise_id,
            team_id=known.get("team_id") or team_id,
            bot_id=known.get("bot_id"),
            bot_user_id=known.get("user_id"),
            bot_token=self.client.token,
            user_id=user_id,
            bot_scopes=self.scopes,
        )
