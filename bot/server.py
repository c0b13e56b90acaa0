"""The runtime: HTTP or Socket Mode, /healthz, background loops and a graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
import uuid

from aiohttp import web

from bot.app import Components, build, learns_limit
from bot.config import load_policy
from bot.core.budget import FALLBACK_PER_MINUTE
from bot.core.model import Policy
from bot.errors import ConfigError, SettingsError, StoreError
from bot.logs import log_context
from bot.metrics import CONTENT_TYPE
from bot.settings import Settings
from bot.slack.transport import socket_mode
from bot.slack.transport.http import dispatch, read_post
from bot.slack.transport.observe import describe
from bot.slack.transport.replays import ReplayGuard
from bot.store.core import answer_within

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# How long a scrape may wait for the database.
METRICS_DB_SECONDS = 2.0
# How often readiness is re-checked for the log (its checks are cached about as long).
READINESS_WATCH_SECONDS = 2.0


class Service:
    """One running sms-bridge: serves Slack and runs the background work of its components."""

    def __init__(self, parts: Components) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.serving = False
        self.stopping = False  # from SIGTERM on: Slack's requests are refused
        secret = parts.settings.slack_signing_secret
        self.replays = ReplayGuard(secret) if secret else None

    def web_app(self) -> web.Application:
        """/healthz always; /slack/events only in HTTP mode (Socket Mode needs none); the
        operator's endpoints too unless METRICS_PORT gives them a port of their own."""
        web_app = web.Application(client_max_size=256 * 1024)
        web_app.router.add_get("/healthz", self.healthz)
        if not self.settings.socket_mode:
            web_app.router.add_post(SLACK_EVENTS_PATH, self.slack_events)
        if self.settings.metrics_port is None:
            self.add_operator_routes(web_app)
        return web_app

    def operator_app(self) -> web.Application:
        """What METRICS_PORT serves: the probes and the metrics, none of them authenticated."""
        web_app = web.Application()
        web_app.router.add_get("/healthz", self.healthz)
        self.add_operator_routes(web_app)
        return web_app

    def add_operator_routes(self, web_app: web.Application) -> None:
        web_app.router.add_get("/readyz", self.readyz)
        web_app.router.add_get("/metrics", self.metrics)

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
        metrics.pacer_waiting.set(parts.pacer.sends_waiting)
        metrics.observe_readiness(await parts.readiness.problems() if self.serving else {})
        try:
            with answer_within(METRICS_DB_SECONDS):
                pending = await parts.db(parts.store.count_in_state, "pending_approval")
                sending = await parts.db(parts.store.count_in_state, "sending")
                pages_open = await parts.db(parts.store.open_escalation_count)
        except StoreError as exc:
            logger.warning("metrics without database state: %s", exc)
        else:
            metrics.approvals_pending.set(pending)
            metrics.requests_sending.set(sending)
            metrics.pages_open.set(pages_open)
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def slack_events(self, request: web.Request) -> web.Response:
        """Hand a request to Bolt, timed from its arrival to its answer, with its Slack
        context on every log record it (and the work it starts) writes."""
        started = time.monotonic()
        if self.stopping:  # Slack retries elsewhere, or later, what a 503 refused
            return web.json_response({"ok": False, "error": "shutting down"}, status=503)
        post = read_post(await request.text())
        fields = describe(post.kind, post.body)
        with log_context(request_id=uuid.uuid4().hex[:12], **fields):
            with self.parts.runner.answering():
                response = await dispatch(self.parts.app, request, post, self.replays)
            self.parts.metrics.observe_slack_request(fields["kind"], time.monotonic() - started)
        return response

    def start_reply_poller(self) -> asyncio.Task[None] | None:
        """Poll 2Chat for SMS replies while ``replies.poll_interval`` is set (off by default:
        every poll costs credits; a reload turns it on or off). Every process runs one; a
        lease lets one of them poll. A dry run reads no replies."""
        if self.parts.twochat.dry_run:
            return None
        return asyncio.get_running_loop().create_task(
            self.parts.replies.run_forever(), name="reply-poller"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop taking requests and let sends finish.

        The probes answer from the start and to the end of the shutdown grace (``/healthz``
        then says 503), so an orchestrator sees why the process is not ready yet, or why
        it is going away, instead of a refused connection."""
        parts = self.parts
        runners = [await serve_on(self.web_app(), self.settings.port, "PORT")]
        if self.settings.metrics_port is not None:
            try:
                runners.append(
                    await serve_on(self.operator_app(), self.settings.metrics_port, "METRICS_PORT")
                )
            except SettingsError:
                await runners[0].cleanup()
                raise
        link, connecting = parts.socket, None
        if link is not None:
            connecting = socket_mode.start(link)
        if learns_limit(parts.policy.current(), dry_run=parts.twochat.dry_run):
            parts.runner.spawn(parts.learner.learn(), name="rate-limit")
        sweeper = asyncio.get_running_loop().create_task(
            parts.sweeper.sweep_forever(self.settings.sweep_interval_seconds, stop),
            name="sweeper",
        )
        poller = self.start_reply_poller()
        exempt_startup_from_gc()
        self.serving = True
        # Readiness asks Slack who the bot is: at once, not at the first request's need.
        parts.runner.spawn(parts.readiness.problems(), name="first-readiness")
        first_attempt = link.client.first_attempt if link is not None else None
        watcher = asyncio.get_running_loop().create_task(
            self.watch_readiness(first_attempt), name="readiness"
        )
        try:
            await wait_for_stop(stop, connecting)
        finally:
            stop.set()  # also when leaving by an error: the sweeper must end too
            self.serving, self.stopping = False, True
            watcher.cancel()
            if poller is not None:
                poller.cancel()
                await parts.replies.release()
            logger.info("shutting down: no new requests, finishing in-flight sends")
            if link is not None and connecting is not None:
                await socket_mode.close(link, connecting)
            try:  # stop is set: the sweeper ends after its current sweep
                await asyncio.wait_for(sweeper, self.settings.shutdown_grace_seconds)
            except TimeoutError:
                logger.warning("sweeper still busy at shutdown; abandoning it")
            # Then the work in flight, with the ladder tiers that last sweep started.
            await parts.runner.drain(self.settings.shutdown_grace_seconds)
            for runner in runners:
                await runner.cleanup()
            logger.info("stopped")

    async def watch_readiness(
        self, after: asyncio.Event | None, interval: float = READINESS_WATCH_SECONDS
    ) -> None:
        """Log what stops this process from working each time it changes, and "ready"
        once readiness first passes (then "ready again" after each recovery). Starts
        once ``after`` is set (the first Socket Mode attempt has ended)."""
        if after is not None:
            await after.wait()
        reported: dict[str, str] | None = None
        was_ready = False
        while True:
            problems = await self.parts.readiness.problems()
            if problems != reported:
                for name, problem in problems.items():
                    if (reported or {}).get(name) != problem:
                        logger.error("not ready (%s): %s", name, problem)
                if not problems:
                    if was_ready:
                        logger.info("ready again")
                    else:
                        port, mode = self.settings.port, self.mode
                        logger.info("sms-bridge ready on port %d (%s)", port, mode)
                    was_ready = True
                reported = problems
            await asyncio.sleep(interval)

    @property
    def mode(self) -> str:
        return "Socket Mode" if self.settings.socket_mode else f"HTTP at {SLACK_EVENTS_PATH}"


async def serve_on(web_app: web.Application, port: int, setting: str) -> web.AppRunner:
    """Serve ``web_app`` on every address at ``port``; a port in use stops the start-up
    with one line naming ``setting``."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "0.0.0.0", port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SettingsError([f"{setting} {port} cannot be used: {exc.strerror}"]) from None
    return runner


async def wait_for_stop(stop: asyncio.Event, connecting: asyncio.Task[None] | None) -> None:
    """Until ``stop`` is set; raises what ends ``connecting`` in failure (a rejected
    SLACK_APP_TOKEN) so that the process stops with that one line."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        if connecting is not None:
            await asyncio.wait({stopping, connecting}, return_when=asyncio.FIRST_COMPLETED)
            if connecting.done() and not connecting.cancelled():
                failure = connecting.exception()
                if failure is not None:
                    raise failure
        await stopping
    finally:
        stopping.cancel()


async def close(parts: Components) -> None:
    """Release the clients and the store, also when startup failed half-way."""
    await parts.twochat.aclose()
    await parts.slack_session.close()
    if parts.socket is not None:  # also one never started
        await socket_mode.release(parts.socket)
    parts.db.close()
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
    old = parts.policy.swap(policy)
    rate = policy.limits.requests_per_minute
    if rate != old.limits.requests_per_minute:  # the reply poller follows the policy itself
        if rate is None:
            parts.pacer.set_rate(FALLBACK_PER_MINUTE, from_account=True)
            await parts.learner.learn()
        else:
            parts.pacer.set_rate(rate)
            logger.info("pacing 2Chat calls under %d per minute", rate)
    logger.info("policy reloaded from %s", path)


# The youngest generation is collected every 10,000 new objects instead of Python's 700;
# the older ones keep Python's ratios (every 10 collections of the one below). A busy
# bridge makes few cycles, but its sends waiting for their turn are young objects in the
# thousands, which every collection walked and promoted again.
GC_THRESHOLDS = (10_000, 10, 10)


def exempt_startup_from_gc() -> None:
    """Move everything built so far (the libraries, phone number metadata, the Slack app)
    out of the garbage collector's sight. It lives as long as the process, yet every full
    collection walked it all again: up to a quarter of the event loop's CPU under load.
    Then collect less often (``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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
