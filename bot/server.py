"""The runtime: HTTP or Socket Mode, /healthz, background loops and a graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web

from bot.app import Components, build
from bot.config import load_policy
from bot.core.model import Policy
from bot.errors import BridgeError, ConfigError, SettingsError, StoreError
from bot.metrics import CONTENT_TYPE
from bot.settings import Settings
from bot.slack import socket_mode
from bot.slack.http import dispatch
from bot.slack.replays import ReplayGuard
from bot.store.core import answer_within

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# How long a scrape may wait for the database.
METRICS_DB_SECONDS = 2.0


class Service:
    """One running sms-bridge: serves Slack and runs the background work of its components."""

    def __init__(self, parts: Components) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.serving = False
        secret = parts.settings.slack_signing_secret
        self.replays = ReplayGuard(secret) if secret else None

    def web_app(self) -> web.Application:
        """The probes always; /slack/events only in HTTP mode (Socket Mode needs none)."""
        web_app = web.Application(client_max_size=256 * 1024)
        web_app.router.add_get("/healthz", self.healthz)
        web_app.router.add_get("/readyz", self.readyz)
        web_app.router.add_get("/metrics", self.metrics)
        if not self.settings.socket_mode:
            web_app.router.add_post(SLACK_EVENTS_PATH, self.slack_events)
        return web_app

    async def healthz(self, _: web.Request) -> web.Response:
        if not self.serving:
            return web.json_response({"ok": False, "status": "shutting down"}, status=503)
        return web.json_response({"ok": True, "in_flight": self.parts.runner.in_flight})

    async def readyz(self, _: web.Request) -> web.Response:
        """503 naming every problem that stops this process from working; 200 when none."""
        if not self.serving:
            return web.json_response(
                {"ok": False, "problems": {"process": "not serving"}}, status=503
            )
        problems = await self.parts.readiness.problems()
        if problems:
            return web.json_response({"ok": False, "problems": problems}, status=503)
        return web.json_response({"ok": True})

    async def metrics(self, _: web.Request) -> web.Response:
        """Prometheus exposition; state kept in the database is read now, within 2 s."""
        parts, metrics = self.parts, self.parts.metrics
        metrics.pacer_waiting.set(parts.workflow.pacer.sends_waiting)
        try:
            with answer_within(METRICS_DB_SECONDS):
                pending = await parts.workflow.db(parts.store.count_in_state, "pending_approval")
                sending = await parts.workflow.db(parts.store.count_in_state, "sending")
                pages_open = await parts.workflow.db(parts.store.open_escalation_count)
        except StoreError as exc:
            logger.warning("metrics without database state: %s", exc)
        else:
            metrics.approvals_pending.set(pending)
            metrics.requests_sending.set(sending)
            metrics.pages_open.set(pages_open)
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def slack_events(self, request: web.Request) -> web.Response:
        with self.parts.runner.answering():
            return await dispatch(self.parts.app, request, self.replays)

    async def log_readiness(self) -> None:
        """Say at startup what stops this process from working (a revoked token, say)."""
        for name, problem in (await self.parts.readiness.problems()).items():
            logger.error("not ready (%s): %s", name, problem)

    def start_reply_poller(self) -> asyncio.Task[None]:
        """Poll 2Chat for SMS replies while ``replies.poll_interval`` is set (off by default:
        every poll costs credits; a reload turns it on or off). Every process runs one; a
        lease lets one of them poll."""
        return asyncio.get_running_loop().create_task(
            self.parts.replies.run_forever(), name="reply-poller"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop taking requests and let sends finish."""
        parts = self.parts
        socket_handler = None
        if self.settings.slack_app_token is not None:
            socket_handler = await socket_mode.connect(
                parts.app, self.settings.slack_app_token, parts.runner
            )
            parts.readiness.socket_connected = socket_handler.client.is_connected
            logger.info("connected to Slack by Socket Mode")
        runner = web.AppRunner(self.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "0.0.0.0", self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SettingsError(
                [f"PORT {self.settings.port} cannot be used: {exc.strerror}"]
            ) from None
        if parts.policy.current().limits.requests_per_minute is None:
            parts.runner.spawn(learn_rate_limit(parts), name="rate-limit")
        sweeper = asyncio.get_running_loop().create_task(
            parts.workflow.sweep_forever(self.settings.sweep_interval_seconds, stop),
            name="sweeper",
        )
        poller = self.start_reply_poller()
        exempt_startup_from_gc()
        self.serving = True
        parts.runner.spawn(self.log_readiness(), name="readiness")
        mode = "Socket Mode" if socket_handler else f"HTTP at {SLACK_EVENTS_PATH}"
        logger.info("sms-bridge ready on port %d (%s)", self.settings.port, mode)
        try:
            await stop.wait()
        finally:
            stop.set()  # also when leaving by an error: the sweeper must end too
            self.serving = False
            poller.cancel()
            await parts.replies.release()
            logger.info("shutting down: no new requests, finishing in-flight sends")
            if socket_handler is not None:
                await socket_mode.close(socket_handler)
            await site.stop()
            await parts.runner.drain(self.settings.shutdown_grace_seconds)
            try:  # stop is set: the sweeper ends after its current sweep
                await asyncio.wait_for(sweeper, self.settings.shutdown_grace_seconds)
            except TimeoutError:
                logger.warning("sweeper still busy at shutdown; abandoning it")
            await runner.cleanup()
            logger.info("stopped")


async def close(parts: Components) -> None:
    """Release the clients and the store, also when startup failed half-way."""
    await parts.twochat.aclose()
    await parts.slack_session.close()
    parts.workflow.close()
    parts.store.close()


async def reload_policy(parts: Components) -> None:
    """Re-read the policy file and swap it in at once, or keep the one in force.

    Requests already accepted keep going; every later decision, and ``/sms help``, uses the
    new policy. An invalid file changes nothing and its located errors are logged.
    """
    path = parts.settings.config_path
    try:
        policy = await asyncio.to_thread(load_policy, path)
    except ConfigError as exc:
        logger.error("policy not reloaded, keeping the one in force: %s", exc)
        return
    old, parts.policy.policy = parts.policy.policy, policy
    rate = policy.limits.requests_per_minute
    if rate != old.limits.requests_per_minute:  # the reply poller follows the policy itself
        if rate is None:
            await learn_rate_limit(parts)
        else:
            parts.workflow.pacer.set_rate(rate)
            logger.info("pacing 2Chat calls under %d per minute", rate)
    logger.info("policy reloaded from %s", path)


async def learn_rate_limit(parts: Components) -> None:
    """Pace 2Chat calls under the account's own per-minute limit (GET /open/info)."""
    try:
        per_minute = await parts.twochat.requests_per_minute()
    except BridgeError as exc:
        logger.warning("could not read 2Chat's rate limit, not pacing: %s", exc)
        return
    if per_minute:
        parts.workflow.pacer.set_rate(per_minute)
        logger.info("pacing 2Chat calls under %d per minute", per_minute)


def exempt_startup_from_gc() -> None:
    """Move everything built so far (the libraries, phone number metadata, the Slack app)
    out of the garbage collector's sight. It lives as long as the process, yet every full
    collection walked it all again: up to a quarter of the event loop's CPU under load."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, policy: Policy) -> None:
    """Run the service until SIGTERM or SIGINT; SIGHUP reloads the policy file."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parts = build(settings, policy)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: parts.runner.spawn(reload_policy(parts), name="reload")
    )
    try:
        await Service(parts).run(stop)
    finally:
        await close(parts)
