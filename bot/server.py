"""Runtime (SPEC §4): wiring, HTTP or Socket Mode, /healthz, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.model import Policy
from bot.errors import BridgeError
from bot.settings import Settings
from bot.slack.bolt_app import build_app
from bot.slack.deps import Bridge
from bot.slack.reporter import SlackReporter
from bot.sms.replies import ReplyRelay
from bot.sms.twochat import TwoChatClient
from bot.store import open_store
from bot.tasks import TaskRunner
from bot.workflow import Workflow

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# Slack's own response_url host; the configured API host is added so stand-ins work too.
SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com"})


def slack_client(settings: Settings, session: aiohttp.ClientSession) -> AsyncWebClient:
    """Web API client honouring SLACK_API_URL, retrying Slack rate limits as slack-sdk does.

    One shared session: without it slack-sdk opens a new connection for every call, which
    the benchmark showed to be the second-largest CPU cost per send."""
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


class Service:
    """One running sms-bridge: the Bolt app, its clients and its background work."""

    def __init__(self, settings: Settings, policy: Policy) -> None:
        self.settings = settings
        self.policy = policy
        self.runner = TaskRunner()
        self.twochat = TwoChatClient(
            settings.twochat_api_key,
            settings.twochat_api_url,
            connect_timeout=settings.twochat_connect_timeout,
            read_timeout=settings.twochat_read_timeout,
        )
        self.slack_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.client = slack_client(settings, self.slack_session)
        self.store = open_store(settings.database_url)
        api_host = urlsplit(settings.slack_api_url).hostname or ""
        reporter = SlackReporter(self.client, SLACK_RESPONSE_HOSTS | {api_host})
        # A send still "sending" after the longest a 2Chat call can take was cut off by a crash.
        stale_after = timedelta(
            seconds=settings.twochat_connect_timeout + settings.twochat_read_timeout + 2
        )
        self.workflow = Workflow(
            self.store,
            lambda: self.policy,
            self.twochat,
            reporter,
            self.runner,
            stale_after=stale_after,
        )
        self.replies = ReplyRelay(self.workflow, self.twochat)
        self.bridge = Bridge(
            policy_source=lambda: self.policy,
            workflow=self.workflow,
            reporter=reporter,
            runner=self.runner,
        )
        self.app: AsyncApp = build_app(
            self.bridge, self.client, settings.slack_signing_secret, settings.socket_mode
        )
        self.serving = False

    def web_app(self) -> web.Application:
        """/healthz always; /slack/events only in HTTP mode (Socket Mode needs no endpoint)."""
        web_app = web.Application(client_max_size=256 * 1024)
        web_app.router.add_get("/healthz", self.healthz)
        if not self.settings.socket_mode:
            web_app.router.add_post(SLACK_EVENTS_PATH, self.slack_events)
        return web_app

    async def healthz(self, _: web.Request) -> web.Response:
        if not self.serving:
            return web.json_response({"ok": False, "status": "shutting down"}, status=503)
        return web.json_response({"ok": True, "in_flight": self.runner.in_flight})

    async def slack_events(self, request: web.Request) -> web.Response:
        """Hand the request to Bolt. A payload so malformed that Bolt itself trips over it
        gets a 400, never a 500 with a traceback."""
        try:
            bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("malformed Slack payload rejected: %s", type(exc).__name__)
            return web.json_response({"ok": False, "error": "malformed request"}, status=400)
        return await to_aiohttp_response(bolt_response)

    async def learn_rate_limit(self) -> None:
        """Pace 2Chat calls under the account's own per-minute limit (GET /open/info)."""
        try:
            per_minute = await self.twochat.requests_per_minute()
        except BridgeError as exc:
            logger.warning("could not read 2Chat's rate limit, not pacing: %s", exc)
            return
        if per_minute:
            self.workflow.pacer.set_rate(per_minute)
            logger.info("pacing 2Chat calls under %d per minute", per_minute)

    def start_reply_poller(self) -> asyncio.Task[None] | None:
        """Poll 2Chat for SMS replies when ``replies.poll_interval`` is set (off by default:
        every poll costs credits). Every process runs one; a lease lets one of them poll."""
        interval = self.policy.replies.poll_interval
        if interval is None:
            return None
        seconds = interval.total_seconds()
        logger.info("relaying SMS replies: polling 2Chat every %gs while texts are recent", seconds)
        return asyncio.get_running_loop().create_task(
            self.replies.run_forever(seconds), name="reply-poller"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop taking requests and let sends finish."""
        runner = web.AppRunner(self.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "0.0.0.0", self.settings.port)
        await site.start()
        socket_handler = None
        if self.settings.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket_handler = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
            await socket_handler.connect_async()
            logger.info("connected to Slack by Socket Mode")
        if self.policy.limits.requests_per_minute is None:
            self.runner.spawn(self.learn_rate_limit(), name="rate-limit")
        sweeper = asyncio.get_running_loop().create_task(
            self.workflow.sweep_forever(self.settings.sweep_interval_seconds, stop),
            name="sweeper",
        )
        poller = self.start_reply_poller()
        self.serving = True
        mode = "Socket Mode" if socket_handler else f"HTTP at {SLACK_EVENTS_PATH}"
        logger.info("sms-bridge ready on port %d (%s)", self.settings.port, mode)
        try:
            await stop.wait()
        finally:
            stop.set()  # also when leaving by an error: the sweeper must end too
            self.serving = False
            if poller is not None:
                poller.cancel()
                await self.replies.release()
            logger.info("shutting down: no new requests, finishing in-flight sends")
            if socket_handler is not None:
                await socket_handler.close_async()
            await site.stop()
            await self.runner.drain(self.settings.shutdown_grace_seconds)
            try:  # stop is set: the sweeper ends after its current sweep
                await asyncio.wait_for(sweeper, self.settings.shutdown_grace_seconds)
            except TimeoutError:
                logger.warning("sweeper still busy at shutdown; abandoning it")
            await runner.cleanup()
            await self.twochat.aclose()
            await self.slack_session.close()
            self.store.close()
            logger.info("stopped")


async def serve(settings: Settings, policy: Policy) -> None:
    """Run the service until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Service(settings, policy).run(stop)
