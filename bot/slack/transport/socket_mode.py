"""Socket Mode: Slack's events over one outgoing WebSocket instead of a public HTTP endpoint.

slack-sdk's client retries a failed connection every 5 s for ever, with a full traceback
each time, and blocks whoever awaits it. Here each attempt (a WebSocket URL from
``apps.connections.open``, then the WebSocket itself) is followed by one log line and an
exponential backoff; the connection is made in the background, so the probes answer and
SIGTERM is honoured at any moment, and ``problem`` tells ``/readyz`` why it is down. A
rejected app-level token, which no retry cures, stops the bridge before it ever connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SettingsError
from bot.logs import log_context
from bot.metrics import Metrics
from bot.slack.transport.identity import slack_error
from bot.slack.transport.observe import describe_envelope
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
# Waits between attempts: 1 s, doubling up to 30 s, each shortened by up to a fifth so that
# several processes do not come back in step.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# Slack pings every few seconds; slack-sdk's default of 10 s finds a dead connection late.
PING_INTERVAL = 5.0


def token_problem(error: str) -> str:
    """The one line an operator reads when Slack refuses the app-level token."""
    return (
        f"SLACK_APP_TOKEN was rejected by Slack ({error}): set it to the app-level token "
        "(xapp-...) of this Slack app, with the connections:write scope"
    )


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    ceiling: float = min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** (attempt - 1))
    return ceiling * random.uniform(0.8, 1.0)


def describe_failure(exc: BaseException) -> str:
    """A failed attempt in a few words: which step failed and the cause, never a token."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        return f"apps.connections.open answered HTTP {status} ({slack_error(exc)})"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"the WebSocket was refused (HTTP {exc.status})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class BackoffSocketModeClient(SocketModeClient):
    """slack-sdk's aiohttp client with its connect loop replaced: backoff, one line per
    failed attempt, and the state readiness reports."""

    def __init__(self, app: AsyncApp, app_token: str) -> None:
        # The app's client would retry a refused connection itself, with lines of its own:
        # here each attempt is one request, and this loop does the retrying.
        client = app.client
        once = AsyncWebClient(
            base_url=client.base_url,
            timeout=client.timeout,
            session=client.session,
            retry_handlers=[],
            logger=client.logger,
        )
        super().__init__(
            app_token=app_token, logger=app.logger, web_client=once, ping_interval=PING_INTERVAL
        )
        self.problem: str | None = "not connected to Slack yet"
        self.ever_connected = False
        # Set once the first attempt has ended either way: until then "not connected yet"
        # is no news for an operator.
        self.first_attempt = asyncio.Event()

    async def connect(self) -> None:
        """Attempt after attempt until connected or closed. ``SettingsError`` when Slack
        rejects the token before the bridge ever connected."""
        attempt = 0
        while not self.closed:
            attempt += 1
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.closed:
                    return
                error = slack_error(exc) if isinstance(exc, SlackApiError) else None
                if error in TOKEN_ERRORS:
                    self.problem = token_problem(str(error))
                    if not self.ever_connected:
                        raise SettingsError([self.problem]) from None
                else:
                    self.problem = f"Socket Mode is down: {describe_failure(exc)}"
                wait = backoff(attempt)
                logger.warning(
                    "Socket Mode attempt %d failed: %s; next attempt in %.1fs",
                    attempt,
                    self.problem,
                    wait,
                )
                self.wss_uri = None  # a URL is good for one connection: ask for a new one
                self.first_attempt.set()
                await asyncio.sleep(wait)
            else:
                self.problem = None
                self.first_attempt.set()
                verb = "reconnected" if self.ever_connected else "connected"
                self.ever_connected = True
                logger.info("%s to Slack by Socket Mode (attempt %d)", verb, attempt)
                return

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        """slack-sdk's reconnect (a dropped or stale session, Slack's ``disconnect``), made
        through ``connect`` so that it backs off too."""
        try:
            await asyncio.wait_for(self.connect_operation_lock.acquire(), 5)
        except TimeoutError:
            return
        try:
            if force or not await self.is_connected():
                self.problem = "the Socket Mode connection to Slack is down; reconnecting"
                self.wss_uri = None
                await self.connect()
        finally:
            self.connect_operation_lock.release()

    async def _connect_once(self) -> None:
        """One attempt, as slack-sdk's own loop body makes it, with its errors raised."""
        old = self.current_session
        self.auto_reconnect_enabled = False
        if old is not None:
            with contextlib.suppress(Exception):  # a broken session may fail to close
                await old.close()
        if self.aiohttp_client_session.closed:
            self.aiohttp_client_session = aiohttp.ClientSession()
        if self.wss_uri is None:
            response = await self.web_client.apps_connections_open(app_token=self.app_token)
            self.wss_uri = str(response["url"])
        self.current_session = await self.aiohttp_client_session.ws_connect(
            self.wss_uri, autoping=False, heartbeat=self.ping_interval, proxy=self.proxy
        )
        self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
        self.stale = False
        self.last_ping_pong_time = None
        await self.current_session.ping(f"sdk-ping-pong:{time.time()}".encode())
        for task in (self.current_session_monitor, self.message_receiver):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
        self.message_receiver = asyncio.ensure_future(self.receive_messages())


class SocketModeLink(AsyncSocketModeHandler):
    """Bolt's handler on the backing-off client, with each request counted as being
    answered until its ack is sent (sends it starts wait for that; see
    ``TaskRunner.answering``)."""

    client: BackoffSocketModeClient

    def __init__(self, app: AsyncApp, app_token: str, runner: TaskRunner, metrics: Metrics) -> None:
        # Not Bolt's __init__: it would build (and leave running) a client of its own.
        self.app = app
        self.app_token = app_token
        self.client = BackoffSocketModeClient(app, app_token)
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
        self._runner = runner
        self._metrics = metrics

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        """Bolt's handling, timed until the ack is sent, with the envelope's Slack context
        on every log record it (and the work it starts) writes."""
        started = time.monotonic()
        fields = describe_envelope(req.type, req.payload)
        with log_context(request_id=req.envelope_id, **fields):
            with self._runner.answering():
                await super().handle(client, req)
            self._metrics.observe_slack_request(fields["kind"], time.monotonic() - started)

    async def problem(self) -> str | None:
        """What ``/readyz`` reports: None while connected."""
        if await self.client.is_connected():
            return None
        return self.client.problem or "the Socket Mode connection to Slack is down"


def start(link: SocketModeLink) -> asyncio.Task[None]:
    """Start connecting in the background; the task fails with ``SettingsError`` if Slack
    rejects the token before the first connection, and ends once connected."""
    return asyncio.get_running_loop().create_task(link.client.connect(), name="socket-mode")


async def close(
    link: SocketModeLink, connecting: asyncio.Task[None], timeout: float = CLOSE_TIMEOUT
) -> None:
    """Stop connecting and close the connection, giving up on Slack's half of the
    handshake after ``timeout``."""
    client = link.client
    client.closed = True
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await connecting
    try:
        await asyncio.wait_for(link.close_async(), timeout)  # type: ignore[no-untyped-call]
    except TimeoutError:
        logger.warning("Slack did not close the Socket Mode connection in %gs; dropped", timeout)
    # After a timeout the client's own clean-up never ran: end its tasks and its session.
    await release(link)


async def release(link: SocketModeLink) -> None:
    """End the tasks and the session the link's client has had since it was built (also
    when it was never started)."""
    client = link.client
    for task in (client.message_processor, client.current_session_monitor, client.message_receiver):
        if task is not None:
            task.cancel()
    if not client.aiohttp_client_session.closed:
        await client.aiohttp_client_session.close()
