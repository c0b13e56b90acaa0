"""Wiring only: settings and policy in, every long-lived component out.

Each component is built here and passed to the ones that use it, so nothing is a module
global and tests can build the same graph against stand-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.budget import FALLBACK_PER_MINUTE, BudgetRule, Grant
from bot.core.model import Policy
from bot.health import Readiness
from bot.metrics import Metrics
from bot.sending.approvals import Approvals
from bot.sending.escalation import Ladders
from bot.sending.leases import RequestLeases
from bot.sending.queries import Queries
from bot.sending.replies import ReplyRelay
from bot.sending.sends import Delivery
from bot.sending.services import Services
from bot.sending.sweeper import Sweeper
from bot.sending.workflow import ANSWER_DEADLINE, FANOUT_CONCURRENCY, Workflow
from bot.settings import Settings
from bot.slack.bolt_app import build_app
from bot.slack.directory import SlackDirectory
from bot.slack.listeners.deps import Bridge
from bot.slack.render.presenter import SLACK_PRESENTER
from bot.slack.reporter import SlackReporter
from bot.slack.transport.identity import SlackIdentity
from bot.slack.user_names import SlackNames
from bot.sms.budget import Ledger, Priority, RatePacer, SharedLedger
from bot.sms.dry_run import DryRunTwoChatClient
from bot.sms.fanout import RetryPolicy
from bot.sms.twochat import UNREACHABLE_REASONS, TwoChatClient
from bot.store import Store, open_store
from bot.tasks import TaskRunner

# Slack's own response_url host; the configured API host is added so stand-ins work too.
SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com"})


class PolicyHolder:
    """The policy in force; components read it through ``current`` at each use."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def current(self) -> Policy:
        return self.policy


@dataclass
class Components:
    """One running sms-bridge's parts, for the server to start and stop."""

    settings: Settings
    policy: PolicyHolder
    runner: TaskRunner
    twochat: TwoChatClient
    slack_session: aiohttp.ClientSession
    client: AsyncWebClient
    store: Store
    services: Services
    pacer: RatePacer
    workflow: Workflow
    replies: ReplyRelay
    readiness: Readiness
    metrics: Metrics
    app: AsyncApp


class ObservedWebClient(AsyncWebClient):
    """slack-sdk's client, telling ``on_error`` of every failed call (method, Slack's error)
    so metrics count them and readiness re-checks the token after an auth error."""

    def __init__(self, on_error: Callable[[str, str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_error = on_error

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            # An answer that is no JSON (a proxy's error page) has text, not fields, as data.
            data = exc.response.data
            error = data.get("error") if isinstance(data, dict) else None
            self._on_error(api_method, str(error or "unknown"))
            raise
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            self._on_error(api_method, type(exc).__name__)
            raise


def slack_client(
    settings: Settings, session: aiohttp.ClientSession, on_error: Callable[[str, str], None]
) -> AsyncWebClient:
    """Web API client honouring SLACK_API_URL, retrying Slack rate limits as slack-sdk does.

    One shared session: without it slack-sdk opens a new connection for every call, which
    the benchmark showed to be the second-largest CPU cost per send."""
    return ObservedWebClient(
        on_error,
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def twochat_client(
    settings: Settings, metrics: Metrics, readiness: Readiness, pacer: RatePacer
) -> TwoChatClient:
    """The 2Chat client (or its dry run, which calls 2Chat for nothing), paced by the
    deployment's budget, telling metrics and readiness of every answer and of every call
    that got none."""

    def answered(path: str, status: int, seconds: float) -> None:
        metrics.observe_twochat(path, status, seconds)
        readiness.record_twochat_status(status)

    def failed(path: str, reason: str, message: str) -> None:
        metrics.observe_twochat_failure(path, reason)
        if reason in UNREACHABLE_REASONS:
            readiness.record_twochat_unreachable(message)

    client_class = DryRunTwoChatClient if settings.twochat_dry_run else TwoChatClient
    return client_class(
        settings.twochat_api_key,
        settings.twochat_api_url,
        connect_timeout=settings.twochat_connect_timeout,
        read_timeout=settings.twochat_read_timeout,
        max_connections=FANOUT_CONCURRENCY,
        on_status=answered,
        on_failure=failed,
        pacer=pacer,
    )


def twochat_budget(
    settings: Settings, policy: Policy, store: Store, services: Services
) -> RatePacer:
    """The deployment's one 2Chat budget: kept in the database when processes share it
    (``services`` runs the store calls), unlimited in a dry run, which calls no 2Chat.
    Without the policy's limit, the account's: the lowest plan's until 2Chat is asked."""

    async def take_shared(priority: Priority, rule: BudgetRule, floor: bool) -> Grant:
        return await services.db(store.take_twochat_call, priority, rule, floor)

    async def learn_shared(per_minute: int) -> None:
        await services.db(store.learn_twochat_limit, per_minute)

    ledger: Ledger | None = SharedLedger(take_shared, learn_shared) if store.shared else None
    if settings.twochat_dry_run:
        return RatePacer(None, ledger=ledger)
    limit = policy.limits.requests_per_minute
    return RatePacer(limit or FALLBACK_PER_MINUTE, from_account=limit is None, ledger=ledger)


def slack_identity(settings: Settings, session: aiohttp.ClientSession) -> SlackIdentity:
    """Who the bot is, asked once at start-up and kept. Its own client, without retries:
    auth.test must answer readiness within its 2 s."""
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[],
    )
    return SlackIdentity(client)


def slack_reporter(settings: Settings, client: AsyncWebClient) -> SlackReporter:
    """Slack output, trusting response_urls on Slack's host and the configured API's."""
    api_host = urlsplit(settings.slack_api_url).hostname or ""
    return SlackReporter(
        client, SLACK_RESPONSE_HOSTS | {api_host}, dry_run=settings.twochat_dry_run
    )


def send_services(
    settings: Settings,
    store: Store,
    holder: PolicyHolder,
    client: AsyncWebClient,
    reporter: SlackReporter,
    metrics: Metrics,
) -> Services:
    """What every part of the send path shares: the store's threads, the policy in force,
    Slack as its reporter and presenter, Slack's directory, and the metrics as listeners."""
    directory = SlackDirectory(
        client, settings.slack_directory_ttl_seconds, settings.slack_profile_lookups_per_minute
    )
    return Services(
        store,
        holder.current,
        reporter,
        SLACK_PRESENTER,
        directory=directory.snapshot,
        outcome_listeners=[metrics.observe_sms],
        ack_listeners=[metrics.observe_page_ack],
    )


def send_path(
    services: Services,
    twochat: TwoChatClient,
    pacer: RatePacer,
    runner: TaskRunner,
    stale_after: timedelta,
) -> Workflow:
    """The send path's parts, each given what it uses, and the workflow they serve. A lease
    nobody renewed for ``stale_after`` (as long as a send may take) marks a dead process."""
    leases = RequestLeases(services, stale_after)
    delivery = Delivery(
        services, twochat, pacer, leases, concurrency=FANOUT_CONCURRENCY, retry=RetryPolicy()
    )
    approvals = Approvals(services, delivery)
    ladders = Ladders(services, delivery)
    sweeper = Sweeper(services, delivery, approvals, stale_after=stale_after, ladders=ladders)
    return Workflow(
        services,
        twochat,
        runner,
        delivery=delivery,
        approvals=approvals,
        ladders=ladders,
        sweeper=sweeper,
    )


def build(settings: Settings, policy: Policy) -> Components:
    """Build every component, each from the ones it uses, none changed afterwards; must
    run inside the event loop (aiohttp needs one)."""
    store = open_store(settings.database_url)  # first: it is what most often fails to open
    holder = PolicyHolder(policy)
    runner = TaskRunner()
    metrics = Metrics()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    def slack_error(method: str, error: str) -> None:
        metrics.observe_slack_error(method, error)
        readiness.record_slack_error(error)

    client = slack_client(settings, session, slack_error)
    identity = slack_identity(settings, session)
    readiness = Readiness(store, identity.check)  # slack_error finds it when called
    reporter = slack_reporter(settings, client)
    services = send_services(settings, store, holder, client, reporter, metrics)
    pacer = twochat_budget(settings, policy, store, services)
    twochat = twochat_client(settings, metrics, readiness, pacer)
    # A send still "sending" after the longest a 2Chat call can take was cut off by a crash.
    stale_after = timedelta(
        seconds=settings.twochat_connect_timeout + settings.twochat_read_timeout + 2
    )
    workflow = send_path(services, twochat, pacer, runner, stale_after)
    bridge = Bridge(
        policy_source=holder.current,
        workflow=workflow,
        queries=Queries(services, answer_deadline=ANSWER_DEADLINE),
        reporter=reporter,
        runner=runner,
        read_directory=services.directory,
        user_names=SlackNames(client).names,
    )
    app = build_app(bridge, client, settings.slack_signing_secret, settings.socket_mode, identity)
    return Components(
        settings=settings,
        policy=holder,
        runner=runner,
        twochat=twochat,
        slack_session=session,
        client=client,
        store=store,
        services=services,
        pacer=pacer,
        workflow=workflow,
        replies=ReplyRelay(services, twochat, ladders=workflow.ladders),
        readiness=readiness,
        metrics=metrics,
        app=app,
    )
