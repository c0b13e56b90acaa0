"""The composition root: settings and policy in, every long-lived component out.

Each component is built here, once, and given only what it uses (the send path's parts get
the small roles of ``bot.sending.roles``, not the whole graph); none is changed after it is
built, nothing is a module global, and tests build the same graph against stand-ins.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from bot.core.directory import DirectorySource
from bot.core.model import Policy
from bot.health import Readiness
from bot.logs import SLACK_SDK_LOGGER
from bot.metrics import Metrics
from bot.sending.approvals import Approvals
from bot.sending.escalation import Ladders
from bot.sending.leases import RequestLeases
from bot.sending.queries import Queries
from bot.sending.replies import ReplyRelay
from bot.sending.roles import Db, Permissions, PolicySource, Wording
from bot.sending.sends import Delivery
from bot.sending.sweeper import Sweeper
from bot.sending.workflow import ANSWER_DEADLINE, FANOUT_CONCURRENCY, Workflow
from bot.settings import Settings
from bot.slack.bolt_app import build_app
from bot.slack.directory import SlackDirectory
from bot.slack.listeners.deps import Bridge
from bot.slack.listeners.paging import resume_cut_off_pages
from bot.slack.render.presenter import SLACK_PRESENTER
from bot.slack.reporter import SlackReporter
from bot.slack.transport.identity import SlackIdentity
from bot.slack.transport.socket_mode import SocketModeLink
from bot.slack.user_names import SlackNames
from bot.sms.budget import Ledger, Priority, RatePacer, SharedLedger
from bot.sms.dry_run import DryRunTwoChatClient
from bot.sms.fanout import RetryPolicy
from bot.sms.limit import LimitLearner
from bot.sms.twochat import UNREACHABLE_REASONS, TwoChatClient
from bot.store import Store, open_store
from bot.tasks import TaskRunner, in_turn_wait_for_lease

# Slack's own response_url host; the configured API host is added so stand-ins work too.
SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com"})


class PolicyHolder:
    """The policy in force; components read it through ``current`` at each use."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def current(self) -> Policy:
        return self.policy

    def swap(self, policy: Policy) -> Policy:
        """Put ``policy`` in force (a reload); the one it replaces."""
        old, self.policy = self.policy, policy
        return old


@dataclass(frozen=True)
class Components:
    """One running sms-bridge's parts, for the server to start, serve and stop; built
    complete by ``build`` and never changed."""

    settings: Settings
    policy: PolicyHolder
    runner: TaskRunner
    twochat: TwoChatClient
    slack_session: aiohttp.ClientSession
    store: Store
    db: Db
    pacer: RatePacer
    learner: LimitLearner
    workflow: Workflow
    sweeper: Sweeper
    replies: ReplyRelay
    readiness: Readiness
    metrics: Metrics
    app: AsyncApp
    socket: SocketModeLink | None  # with SLACK_APP_TOKEN: Slack's events over Socket Mode


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
        logger=SLACK_SDK_LOGGER,
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
    settings: Settings, policy: Policy, db: Db, relearn: Callable[[], None]
) -> RatePacer:
    """The deployment's one 2Chat budget: kept in the database when processes share it,
    unlimited in a dry run, which calls no 2Chat. Without the policy's limit, the account's:
    the lowest plan's until 2Chat is asked, and 2Chat's 429s and 402s ``relearn`` it."""

    async def take_shared(priority: Priority, rule: BudgetRule, floor: bool, wanted: int) -> Grant:
        return await db(db.store.take_twochat_call, priority, rule, floor, wanted)

    async def learn_shared(per_minute: int) -> None:
        await db(db.store.learn_twochat_limit, per_minute)

    ledger: Ledger | None = SharedLedger(take_shared, learn_shared) if db.store.shared else None
    if settings.twochat_dry_run:
        return RatePacer(None, ledger=ledger)
    limit = policy.limits.requests_per_minute
    return RatePacer(
        limit or FALLBACK_PER_MINUTE, from_account=limit is None, ledger=ledger, relearn=relearn
    )


def learns_limit(policy: Policy, *, dry_run: bool) -> bool:
    """Whether 2Chat's limit is read from the account: the policy sets none, and 2Chat is
    really called."""
    return policy.limits.requests_per_minute is None and not dry_run


def slack_identity(settings: Settings, session: aiohttp.ClientSession) -> SlackIdentity:
    """Who the bot is, asked once at start-up and kept. Its own client, without retries:
    auth.test must answer readiness within its 2 s."""
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[],
        logger=SLACK_SDK_LOGGER,
    )
    return SlackIdentity(client)


def socket_link(
    settings: Settings, app: AsyncApp, runner: TaskRunner, metrics: Metrics
) -> SocketModeLink | None:
    """Socket Mode's connection to Slack, not yet started, when SLACK_APP_TOKEN is set."""
    if settings.slack_app_token is None:
        return None
    return SocketModeLink(app, settings.slack_app_token, runner, metrics)


def slack_reporter(settings: Settings, client: AsyncWebClient) -> SlackReporter:
    """Slack output, trusting response_urls on Slack's host and the configured API's."""
    api_host = urlsplit(settings.slack_api_url).hostname or ""
    return SlackReporter(
        client, SLACK_RESPONSE_HOSTS | {api_host}, dry_run=settings.twochat_dry_run
    )


def send_stale_after(settings: Settings) -> timedelta:
    """A send still "sending" after the longest a 2Chat call can take was cut off by a
    crash; a lease nobody renewed for as long marks a dead process."""
    return timedelta(seconds=settings.twochat_connect_timeout + settings.twochat_read_timeout + 2)


@dataclass(frozen=True)
class SendPath:
    """The send path's long-lived parts the rest of the app uses."""

    workflow: Workflow
    sweeper: Sweeper
    replies: ReplyRelay
    queries: Queries


def send_path(
    stale_after: timedelta,
    db: Db,
    policy: PolicySource,
    reporter: SlackReporter,
    directory: DirectorySource,
    metrics: Metrics,
    twochat: TwoChatClient,
    pacer: RatePacer,
    runner: TaskRunner,
    resume_pages: Callable[[datetime], Awaitable[None]],
) -> SendPath:
    """The send path's parts, each given the roles it uses (``bot.sending.roles``);
    ``stale_after``: see ``send_stale_after``; ``resume_pages``: see ``Sweeper``."""
    words = Wording(SLACK_PRESENTER, policy)
    permissions = Permissions(policy, directory)
    leases = RequestLeases(db, stale_after)
    delivery = Delivery(
        db,
        policy,
        words,
        reporter,
        twochat,
        pacer,
        leases,
        concurrency=FANOUT_CONCURRENCY,
        retry=RetryPolicy(),
        directory=directory,
        on_outcome=metrics.observe_sms,
    )
    approvals = Approvals(db, policy, words, reporter, permissions, delivery)
    ladders = Ladders(
        db,
        policy,
        words,
        reporter,
        permissions,
        delivery,
        runner,
        directory=directory,
        on_ack=metrics.observe_page_ack,
    )
    workflow = Workflow(
        db,
        policy,
        words,
        permissions,
        twochat,
        runner,
        delivery=delivery,
        approvals=approvals,
        ladders=ladders,
    )
    return SendPath(
        workflow,
        Sweeper(db, policy, words, delivery, approvals, ladders, stale_after, resume_pages),
        ReplyRelay(db, policy, words, reporter, twochat, ladders=ladders),
        Queries(db, answer_deadline=ANSWER_DEADLINE),
    )


def slack_bridge(
    client: AsyncWebClient,
    send: SendPath,
    policy: PolicySource,
    reporter: SlackReporter,
    runner: TaskRunner,
    directory: DirectorySource,
    stale_after: timedelta,
) -> Bridge:
    """What the Bolt app's listeners use."""
    return Bridge(
        policy_source=policy,
        workflow=send.workflow,
        queries=send.queries,
        reporter=reporter,
        runner=runner,
        read_directory=directory,
        user_names=SlackNames(client).names,
        page_stale_after=stale_after,
    )


def build(settings: Settings, policy: Policy) -> Components:
    """Build every component, each from the ones it uses, none changed afterwards; must
    run inside the event loop (aiohttp needs one). Long because it is the composition
    root: every part is built here once, in the order the parts use each other."""
    store = open_store(settings.database_url)  # first: it is what most often fails to open
    db = Db(store)
    holder = PolicyHolder(policy)
    stale_after = send_stale_after(settings)
    runner = TaskRunner(in_turn_at_most=in_turn_wait_for_lease(stale_after.total_seconds()))
    metrics = Metrics()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    # Four parts tell ones built after them (which use them in turn): these functions
    # find those by name when called, so each part is still built once, complete.
    def slack_error(method: str, error: str) -> None:
        metrics.observe_slack_error(method, error)
        readiness.record_slack_error(error)

    def relearn() -> None:  # only while the policy in force leaves the limit to 2Chat
        if learns_limit(holder.current(), dry_run=settings.twochat_dry_run):
            learner.relearn()

    async def socket_problem() -> str | None:
        return await link.problem() if link is not None else None

    async def resume_pages(cutoff: datetime) -> None:  # those the Slack layer took in
        await resume_cut_off_pages(bridge, cutoff)

    client = slack_client(settings, session, slack_error)
    identity = slack_identity(settings, session)
    readiness = Readiness(
        store, identity.check, socket_problem=socket_problem if settings.socket_mode else None
    )
    reporter = slack_reporter(settings, client)
    pacer = twochat_budget(settings, policy, db, relearn)
    twochat = twochat_client(settings, metrics, readiness, pacer)
    learner = LimitLearner(twochat, pacer, functools.partial(runner.spawn, name="rate-limit"))
    directory = SlackDirectory(
        client, settings.slack_directory_ttl_seconds, settings.slack_profile_lookups_per_minute
    ).snapshot

    send = send_path(
        stale_after,
        db,
        holder.current,
        reporter,
        directory,
        metrics,
        twochat,
        pacer,
        runner,
        resume_pages,
    )
    bridge = slack_bridge(client, send, holder.current, reporter, runner, directory, stale_after)
    app = build_app(bridge, client, settings.slack_signing_secret, settings.socket_mode, identity)
    link = socket_link(settings, app, runner, metrics)
    return Components(
        settings=settings,
        policy=holder,
        runner=runner,
        twochat=twochat,
        slack_session=session,
        store=store,
        db=db,
        pacer=pacer,
        learner=learner,
        workflow=send.workflow,
        sweeper=send.sweeper,
        replies=send.replies,
        readiness=readiness,
        metrics=metrics,
        app=app,
        socket=link,
    )
