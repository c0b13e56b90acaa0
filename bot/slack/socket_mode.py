"""Socket Mode: Slack's events over one outgoing WebSocket instead of a public HTTP endpoint.

slack-sdk's client retries a failed connection forever, even when Slack rejects the
app-level token, so ``connect`` asks for the WebSocket URL itself first: a wrong
SLACK_APP_TOKEN stops the bridge at start with one clear line instead of a retry loop.
"""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.errors import SettingsError
from bot.tasks import TaskRunner

logger = logging.getLogger(__name__)

# apps.connections.open errors that say the token is wrong, which no retry will cure.
TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)
# Slack answers a close handshake at once; waiting longer only eats the shutdown grace
# period that in-flight sends need.
CLOSE_TIMEOUT = 2.0


def token_problem(error: str) -> str:
    """The one line an operator reads when Slack refuses the app-level token."""
    return (
        f"SLACK_APP_TOKEN was rejected by Slack ({error}): set it to the app-level token "
        "(xapp-...) of this Slack app, with the connections:write scope"
    )


class _AnsweringHandler(AsyncSocketModeHandler):
    """Bolt's handler, with each request counted as being answered until its ack is sent
    (sends it starts wait for that; see ``TaskRunner.answering``)."""

    def __init__(self, app: AsyncApp, app_token: str, runner: TaskRunner) -> None:
        super().__init__(app, app_token)
        self._runner = runner

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        with self._runner.answering():
            await super().handle(client, req)


async def connect(app: AsyncApp, app_token: str, runner: TaskRunner) -> AsyncSocketModeHandler:
    """Open the Socket Mode connection; ``SettingsError`` if Slack refuses the token.

    Other failures (Slack down, network) are left to slack-sdk, which keeps retrying."""
    wss_url: str | None = None
    try:
        response = await app.client.apps_connections_open(app_token=app_token)
        wss_url = str(response["url"])
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        if error in TOKEN_ERRORS:
            raise SettingsError([token_problem(error)]) from None
        logger.warning("Slack refused a Socket Mode URL (%s); retrying", error or "no error")
    handler = _AnsweringHandler(app, app_token, runner)
    handler.client.wss_uri = wss_url
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return handler


async def close(handler: AsyncSocketModeHandler, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close the connection, giving up on Slack's half of the handshake after ``timeout``."""
    client = handler.client
    try:
        await asyncio.wait_for(handler.close_async(), timeout)  # type: ignore[no-untyped-call]
    except TimeoutError:
        logger.warning("Slack did not close the Socket Mode connection in %gs; dropped", timeout)
    # After a timeout the client's own clean-up never ran: end its tasks and its session.
    for task in (client.message_processor, client.current_session_monitor, client.message_receiver):
        if task is not None:
            task.cancel()
    if not client.aiohttp_client_session.closed:
        await client.aiohttp_client_session.close()
