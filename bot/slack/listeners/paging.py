"""Incident paging from channels: ``@bot page …`` and the channels' ``auto_page`` rules.

Both page on-call people from the channel where an incident is happening (the message
shortcut, the third way, is in ``shortcuts``). Each one only turns a Slack event into a
policy decision and an ``Origin`` whose ``thread_ts`` is the message that triggered the page,
then hands it to ``Bridge.submit``: recording, the paced and retried fan-out, and the one
live thread reply are the workflow's. Parsing and text extraction are pure functions in
``bot.core``, so they are testable without Slack.

Slack delivers an answered event only once, so each page's event is kept in the store from
before Slack is answered until its page is recorded (``until_paged``); the sweeper runs
``resume_cut_off_pages``, which pages what a process that died in between left undone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.alerts import alert_key, auto_page_text, message_text
from bot.core.model import Policy
from bot.core.page_command import parse_page
from bot.core.policy import Refuse, auto_page_sender, decide, decide_auto_page, page_targets
from bot.core.segments import gsm7_cleanup
from bot.errors import BadPayload, StoreError
from bot.sending.leases import heartbeat
from bot.sending.ports import Origin
from bot.sending.queries import KeptEvent
from bot.sending.roles import read_rosters
from bot.slack.listeners.deps import DATABASE_UNAVAILABLE, Bridge
from bot.slack.payloads import MessageEvent
from bot.slack.render.refusals import refusal_text
from bot.slack.transport.redelivery import ask_for_redelivery, is_redelivery

logger = logging.getLogger(__name__)

KIND = "page"
# How long an alert that came during a database outage waits for the database (seconds).
ALERT_WAITS_FOR_DATABASE = 900.0
# An alert event is claimed in the database before Slack is answered, within this much of
# Slack's 3 s; a claim outlives Slack's last redelivery (5 minutes after the first).
EVENT_CLAIM_WITHIN = 1.5
EVENT_CLAIM_TTL = timedelta(hours=1)
# A page whose work died with its process this often is given up (aloud), not retried.
PAGE_TAKEOVERS = 3
GIVEN_UP = (
    "*Page:* :warning: not sent: the bridge stopped each time it began this page, or could "
    "not come back to it within the hour. Page again if it is still needed."
)
T = TypeVar("T")


def usage_text(policy: Policy, channel_id: str, bot_user_id: str | None) -> str:
    """The private hint for a mention that is not a page command."""
    bot = f"<@{bot_user_id}>" if bot_user_id else "@sms-bridge"
    rule = policy.channels.get(channel_id)
    default = (
        f" Without a target it pages this channel's on-call: *{rule.page}*."
        if rule is not None and rule.page
        else " This channel has no default on-call group, so say who."
    )
    return (
        f"*Page on-call by SMS:* `{bot} page [group|contact|number] <what is happening>` "
        f"(several targets: `alice, bob`).{default} Results are posted in the thread of "
        "your message. On any message you can also use the shortcut *Page on-call by SMS*."
    )


async def page_from_mention(
    bridge: Bridge, mention: MessageEvent, user: str, bot_user_id: str | None
) -> None:
    """``@bot page …``: check it like ``/sms``, page into the mention's thread, and answer
    every refusal privately."""
    policy, channel = bridge.policy, mention.channel_id
    names = await bridge.names_in(mention.text)
    command = parse_page(policy, mention.text, bot_user_id, names)
    if command is None:
        await bridge.reporter.whisper(channel, user, usage_text(policy, channel, bot_user_id))
        return
    targets: Sequence[str] = command.targets or page_targets(policy, channel)
    if not targets:
        await bridge.reporter.whisper(
            channel,
            user,
            refusal_text("this channel has no page group; say who, e.g. `page db-oncall …`"),
        )
        return
    if not command.text:
        await bridge.reporter.whisper(
            channel, user, refusal_text("say what is happening after who to page")
        )
        return
    directory = await bridge.directory(patient=True)  # Slack had its answer
    decision = decide(policy, user, targets, command.text, None, directory)
    if isinstance(decision, Refuse):
        await bridge.reporter.whisper(channel, user, refusal_text(decision.reason))
        return
    origin = Origin(
        channel, user, thread_ts=mention.thread_ts, dedupe_key=mention.dedupe_key, kind=KIND
    )
    refusal = await bridge.submit(decision, origin)
    if refusal:
        await bridge.reporter.whisper(channel, user, refusal)


async def page_alert(
    bridge: Bridge,
    alert: MessageEvent,
    text: str,
    event: dict[str, Any],
    kept: KeptEvent,
    outage: _Outage | None = None,
) -> None:
    """``auto_page`` with the alert as Slack shows it: people its ``event`` mentions by id
    alone read "@Dana" (looked up), not "@someone"."""
    names = await bridge.names_in(event)
    await auto_page(bridge, alert, message_text(event, names) if names else text, kept, outage)


async def claim_event(
    bridge: Bridge, alert: MessageEvent, holder: str, kept: KeptEvent
) -> bool | None:
    """Claim an alert event for ``holder`` (this process) before Slack is answered: True
    for the first process the database saw it from, False for another (Slack's redelivery
    of an event that is being paged), None when the database did not answer in time. A
    claim that commits after the time ran out is still this process's, so its wait for
    the database takes it again."""
    queries = bridge.queries
    try:
        return await queries.before_answer(
            EVENT_CLAIM_WITHIN,
            lambda: queries.hold_alert_event(alert.dedupe_key, holder, EVENT_CLAIM_TTL, kept),
        )
    except (StoreError, TimeoutError) as exc:
        logger.warning("alert event %s not claimed, database unavailable: %s", alert.ts, exc)
        return None


async def auto_page(
    bridge: Bridge, alert: MessageEvent, text: str, kept: KeptEvent, outage: _Outage | None = None
) -> None:
    """Page a channel's group for an alert: once per identical alert within the rule's
    dedupe window and once per event, both held in the store (so across processes).

    An alert whose event could not be claimed (``outage``: the database was down) was
    answered 503, so Slack delivers it again; it waits here too (its thread says so) and
    goes out once the database answers, unless a redelivery claimed it first (or the
    thread says why not, after ``ALERT_WAITS_FOR_DATABASE``).
    """
    channel, policy = alert.channel_id, bridge.policy
    rule = policy.channels.get(channel)
    if rule is None or rule.auto_page is None:
        return
    queries = bridge.queries
    claim_event_first = outage is not None
    outage = outage or _Outage(bridge, alert, kept)
    try:
        if claim_event_first and not await outage.claim_event():
            logger.info("auto-page in %s: a redelivery of the alert took it", channel)
            return
        key = alert_key(channel, text)
        window = rule.auto_page.dedupe_window
        if not await outage.wait(lambda: queries.claim_alert(key, alert.dedupe_key, window)):
            logger.info("auto-page in %s: same alert already paged within the window", channel)
            return
        targets = page_targets(policy, channel)
        directory = await read_rosters(bridge.read_directory, policy, targets, patient=True)
        decision = decide_auto_page(policy, channel, gsm7_cleanup(text), directory)
        if isinstance(decision, Refuse) and directory.unread:
            # Slack could not tell who is on call: the next identical alert must try again.
            await outage.wait(lambda: queries.release_alert(key, alert.dedupe_key))
        if isinstance(decision, Refuse):
            refusal: str | None = refusal_text(decision.reason)
        else:
            sender = auto_page_sender(channel)
            accepted = decision

            def origin() -> Origin:
                # A try the database recorded too late was expired, not sent, yet holds the
                # event's key: each later try has a key of its own.
                key = f"{alert.dedupe_key}#{outage.tries}" if outage.tries else alert.dedupe_key
                return Origin(channel, sender, thread_ts=alert.ts, dedupe_key=key, kind=KIND)

            refusal = await outage.wait(lambda: bridge.accept(accepted, origin()))
            if refusal is None and decision.plan.shortened:
                limit = policy.defaults.max_segments
                note = (
                    f":scissors: *Auto-page:* the alert was shortened to fit {limit} SMS segments."
                )
                await bridge.reporter.post(channel, note, thread_ts=alert.ts)
    except StoreError as exc:
        logger.warning("auto-page in %s not sent, database unavailable: %s", channel, exc)
        refusal = refusal_text(DATABASE_UNAVAILABLE)
    if refusal:
        logger.warning("auto-page in %s not sent: %s", channel, refusal)
        await bridge.reporter.post(channel, f"*Auto-page:* {refusal}", thread_ts=alert.ts)


class _Outage:
    """Runs an alert's store calls until the database answers, saying once in the alert's
    thread that its page waits for it."""

    def __init__(
        self,
        bridge: Bridge,
        alert: MessageEvent,
        kept: KeptEvent,
        holder: str = "",
        *,
        told: bool = False,
    ) -> None:
        self._bridge = bridge
        self._alert = alert
        self._kept = kept  # the event, kept with its claim until it is paged
        self.holder = holder  # the process that claims the alert's event
        self._deadline = time.monotonic() + ALERT_WAITS_FOR_DATABASE
        self._told = told  # a redelivery: the first delivery said so already
        self.tries = 0  # failed tries so far

    async def claim_event(self) -> bool:
        """Claim the alert's event once the database answers (see ``claim_event``)."""
        queries, key, kept = self._bridge.queries, self._alert.dedupe_key, self._kept
        return await self.wait(
            lambda: queries.hold_alert_event(key, self.holder, EVENT_CLAIM_TTL, kept)
        )

    async def wait(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s answer; StoreError once the database failed past the deadline."""
        delay = 0.5
        while True:
            try:
                return await call()
            except StoreError as exc:
                if time.monotonic() + delay > self._deadline:
                    raise
                logger.warning("auto-page waits for the database: %s", exc)
                self.tries += 1
                await self._tell()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)

    async def _tell(self) -> None:
        if self._told:
            return
        self._told = True
        alert = self._alert
        await self._bridge.reporter.post(
            alert.channel_id,
            "*Auto-page:* :hourglass_flowing_sand: the bridge's database is unavailable; "
            "this alert is paged as soon as it is back.",
            thread_ts=alert.ts,
        )


def kept_event(
    kind: str, message: MessageEvent, body: dict[str, Any], context: AsyncBoltContext
) -> KeptEvent:
    """A page's event as kept until it is paged: all ``resume_cut_off_pages`` needs."""
    event = {"kind": kind, "body": body, "bot": [context.bot_user_id, context.bot_id]}
    return KeptEvent(f"{kind}:{message.dedupe_key}", json.dumps(event))


async def until_paged(bridge: Bridge, key: str, paging: Awaitable[None]) -> None:
    """Page (``paging``), saying the event is still being paged meanwhile, then mark it
    done: only a process that died (or a shutdown that cut the page off) leaves it undone,
    for a sweeper to take over."""
    every = bridge.page_stale_after.total_seconds() / 3
    try:
        async with heartbeat(lambda: bridge.queries.renew_page_event(key), every):
            await paging
    except asyncio.CancelledError:
        raise
    except Exception:  # it was paged, or failed aloud: either way not a crash's to resume
        logger.exception("page event %s failed", key)
    try:
        await bridge.queries.page_event_done(key)
    except StoreError as exc:  # a sweeper pages it again: its dedupe keys make that a no-op
        logger.warning("page event %s not marked done: %s", key, exc)


async def resume_cut_off_pages(bridge: Bridge, before: datetime) -> None:
    """Page the events whose page a crash cut off (not renewed since ``before``), one
    process each. The page's own dedupe keys make this safe when the crash came after the
    page was recorded. One whose page died with its process ``PAGE_TAKEOVERS`` times, or an
    hour old, is given up aloud (the log, and its thread), never tried for ever."""
    queries = bridge.queries
    for found in await queries.undone_page_events(before):
        if not await queries.take_over_page_event(found):
            continue
        kept = KeptEvent(found.key, found.event)
        if found.tries >= PAGE_TAKEOVERS or found.taken_at < before - EVENT_CLAIM_TTL:
            logger.error("page event %s given up after %d takeovers", kept.key, found.tries)
            message = MessageEvent.parse(json.loads(kept.event)["body"])
            await bridge.reporter.post(message.channel_id, GIVEN_UP, thread_ts=message.thread_ts)
            paging = None
        else:
            paging = await _page_again(bridge, kept)
        if paging is None:
            await queries.page_event_done(kept.key)
            continue
        logger.warning("page event %s was cut off (a crash?); paging it now", kept.key)
        bridge.runner.spawn(until_paged(bridge, kept.key, paging), name=f"resume-{kept.key}")


async def _page_again(bridge: Bridge, kept: KeptEvent) -> Coroutine[Any, Any, None] | None:
    """The page a kept event asks for, as its listener would have started it; None when it
    was recorded before the crash (by a later try's key too) or the policy in force no
    longer pages it."""
    event = json.loads(kept.event)
    message = MessageEvent.parse(event["body"])
    if await bridge.queries.page_recorded_for(message.dedupe_key):
        return None
    bot_user_id, bot_id = event["bot"]
    if event["kind"] == "mention":
        user = message.user_id
        return page_from_mention(bridge, message, user, bot_user_id) if user else None
    inner = event["body"]["event"]
    text = auto_page_text(bridge.policy, inner, bot_user_id, bot_id)
    return None if text is None else page_alert(bridge, message, text, inner, kept)


async def take_mention(bridge: Bridge, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """``@bot page …`` as Slack delivers it: kept before Slack is answered (so a crash
    before the page is recorded loses none), then paged on the runner."""
    try:
        mention = MessageEvent.parse(body)
    except BadPayload as exc:
        logger.info("app_mention ignored: %s", exc)
        return
    if mention.user_id is None:
        logger.info("app_mention without a user ignored")
        return
    kept, queries = kept_event("mention", mention, body, context), bridge.queries
    try:
        await queries.before_answer(EVENT_CLAIM_WITHIN, lambda: queries.keep_page_event(kept))
    except (StoreError, TimeoutError) as exc:
        logger.warning("page event %s not kept, database unavailable: %s", kept.key, exc)
    paging = page_from_mention(bridge, mention, mention.user_id, context.bot_user_id)
    bridge.runner.spawn(until_paged(bridge, kept.key, paging), name=f"page-mention-{mention.ts}")


def register(app: AsyncApp, bridge: Bridge) -> None:
    """Register the mention and auto-page listeners. Events are acked by Bolt; their work
    runs on the bridge's runner so a shutdown lets it finish."""

    @app.event("app_mention")
    async def on_mention(body: dict[str, Any], context: AsyncBoltContext) -> None:
        await take_mention(bridge, body, context)

    holder = uuid.uuid4().hex  # this process, as the holder of alert events' claims
    # Alert events this process has in hand: True while one waits for the database.
    in_hand: dict[str, bool] = {}

    @app.event("message")
    async def on_message(
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
    ) -> None:
        """An alert is claimed in the database before Slack is answered; while the
        database is down Slack is asked to deliver it again (HTTP), and it waits here."""
        text = auto_page_text(bridge.policy, event, context.bot_user_id, context.bot_id)
        if text is None:
            return
        alert = MessageEvent.parse(body)
        if alert.dedupe_key in in_hand:  # delivered again to the process paging it
            if in_hand[alert.dedupe_key]:
                ask_for_redelivery("the database is still unavailable")
            return
        kept = kept_event("alert", alert, body, context)
        claimed = await claim_event(bridge, alert, holder, kept)
        if claimed is False:
            logger.info("alert event %s delivered again: already taken", alert.ts)
            return
        outage = None
        if claimed is None:
            ask_for_redelivery("the database is unavailable")
            outage = _Outage(bridge, alert, kept, holder, told=is_redelivery(request.headers))
        in_hand[alert.dedupe_key] = outage is not None

        async def page() -> None:
            try:
                paging = page_alert(bridge, alert, text, event, kept, outage)
                await until_paged(bridge, kept.key, paging)
            finally:
                in_hand.pop(alert.dedupe_key, None)

        bridge.runner.spawn(page(), name=f"auto-page-{alert.ts}")
