"""Two-way SMS: replies relayed into Slack, acknowledgement by reply, opt-out.

2Chat has no webhook for incoming SMS, so replies are found by polling its read endpoints, and
every call costs a credit. The poller is therefore frugal by construction:

- it calls nothing while no SMS went out within the reply window (a database query decides);
- it makes one conversations call per from-number that texted someone within the window;
- it reads a conversation's messages only when it moved since it was last read (an SMS the
  bridge sent after a reply does not hide the reply);
- every call waits for the deployment's 2Chat budget behind every text, with a guaranteed
  floor (the client's pacer, ``Priority.POLL``), so polling never pushes the account past its
  per-minute limit, never delays a page, and is never starved by one;
- only one process polls at a time (a lease in the store), and each inbound message is
  recorded in the store, pending, before it is acted on, and marked done after: a reply is
  acted on once, and a process killed in between leaves it for the next poll to finish, so
  a STOP or an ack is never lost (its post in Slack may then show twice).

Each reply is posted in the thread of the latest request to that number. A reply of an ack
word marks a page's recipient as having acknowledged (the summary reply in the page's thread
is edited to show who and when); STOP puts the number on the opt-out list and START takes
it off. Classifying a reply is a pure function here, testable without Slack or 2Chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, cast

from bot.core.model import START_WORDS, STOP_WORDS, Policy, Recipient, reply_keyword
from bot.core.phone import mask
from bot.errors import BridgeError, NotPosted, StoreError
from bot.sending.escalation import Ladders
from bot.sending.inbound_tries import given_up_note, log_failure, next_try
from bot.sending.ports import Reporter
from bot.sending.reply_posts import ReplyPosts
from bot.sending.roles import Db, PolicySource, Wording
from bot.sms.twochat import Conversation, SmsMessage, TwoChatClient, e164
from bot.store import PendingInbound, ReplyCursor, StoredRequest

logger = logging.getLogger(__name__)

LEASE_NAME = "reply-poller"
# A reply may carry a timestamp a little before the send it answers (2Chat counts whole
# seconds, clocks differ): still match it to that send.
CLOCK_SKEW = timedelta(minutes=2)
# How often, at most, to ask 2Chat again for the channel list when a from-number is missing.
CHANNELS_REFRESH_SECONDS = 300.0
# The longest wait after failed polls: 2Chat failing (each call costs a credit), and only the
# database failing (it costs none): acks and STOPs are read soon after the database is back.
MAX_BACKOFF_SECONDS = 300.0
DB_BACKOFF_SECONDS = 10.0
# While replies are off, how often the poller looks whether a reloaded policy turned them on.
POLICY_CHECK_SECONDS = 1.0

ReplyKind = Literal["stop", "start", "ack", "reply"]


@dataclass(frozen=True)
class _Moved:
    """A conversation that moved since it was last read, and whether the bridge texted its
    number within the reply window (``known``)."""

    channel: str
    from_number: str
    contact: str
    conversation: Conversation
    cursor: ReplyCursor | None
    known: bool


def classify(text: str, ack_words: Collection[str], *, page: bool) -> ReplyKind:
    """STOP / START (opt-out and back in), an ack word (for a page only), or a plain reply."""
    word = reply_keyword(text)
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if page and word in ack_words:
        return "ack"
    return "reply"


class ReplyRelay:
    """Polls 2Chat for replies and relays them; safe to run in every process (one polls)."""

    def __init__(
        self,
        db: Db,
        policy: PolicySource,
        words: Wording,
        reporter: Reporter,
        twochat: TwoChatClient,
        *,
        holder: str | None = None,
        ladders: Ladders | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,  # tests: simulated time
    ) -> None:
        self._db, self._store = db, db.store
        self._sleep = sleep
        self._policy_source = policy
        self._words = words
        self._reporter = reporter
        self._posts = ReplyPosts(policy, words, reporter)
        self._ladders = ladders  # escalating pages: acked by reply, polled faster
        self._twochat = twochat
        self.holder = holder or uuid.uuid4().hex
        self._channels: dict[str, str] = {}  # from_number -> 2Chat channel uuid
        self._channels_read_at: float | None = None
        self._warned: set[str] = set()  # from-numbers 2Chat does not list, logged once each

    @property
    def policy(self) -> Policy:
        return self._policy_source()

    # ------------------------------------------------------------------ the loop
    async def run_forever(self) -> None:
        """Poll every ``replies.poll_interval`` of the policy in force (a reload turns polling
        on, off or to another pace), backing off while 2Chat fails, briefly if the database does."""
        failures, cap = 0, MAX_BACKOFF_SECONDS
        polling: float | None = None
        while True:
            interval = self._interval(polling)
            if interval is None:
                if polling is not None:
                    await self.release()  # another process may poll at once
                polling = None
                await self._sleep(POLICY_CHECK_SECONDS)
                continue
            polling = interval
            try:
                await self.poll_once(interval)
                failures = 0
            except (BridgeError, OSError) as exc:
                failures += 1
                logger.warning("reply poll failed (%d in a row): %s", failures, exc)
                cap = DB_BACKOFF_SECONDS if isinstance(exc, StoreError) else MAX_BACKOFF_SECONDS
            except Exception:  # a bug must not stop replies for good: log it, keep polling
                failures += 1
                logger.exception("reply poll failed unexpectedly (%d in a row)", failures)
                cap = MAX_BACKOFF_SECONDS
            delay = min(interval * 2 ** min(failures, 10), max(interval, cap))
            await self._wait(delay, fast=failures == 0)

    async def _wait(self, delay: float, *, fast: bool) -> None:
        """The wait before the next poll, cut short while a page awaits its ack (``fast``);
        the database failing meanwhile only ends the wait, never the poller."""
        try:
            if fast and self._ladders is not None:
                await self._ladders.pause(delay)
            else:
                await self._sleep(delay)
        except (BridgeError, OSError) as exc:
            logger.warning("reply poller: wait between polls cut short: %s", exc)

    def _interval(self, polling: float | None) -> float | None:
        """The poll interval in force, in seconds (None: replies are off); says so when it
        changed since ``polling``."""
        setting = self.policy.replies.poll_interval
        interval = setting.total_seconds() if setting is not None else None
        if interval != polling:
            if interval is None:
                logger.info(
                    "SMS replies no longer relayed: the policy has no replies.poll_interval"
                )
            else:
                logger.info(
                    "relaying SMS replies: polling 2Chat every %gs while texts are recent", interval
                )
        return interval

    async def release(self) -> None:
        """Give up the lease at shutdown so another process takes over at once."""
        try:
            await self._db(self._store.release_lease, LEASE_NAME, self.holder)
        except BridgeError as exc:
            logger.info("could not release the reply-poller lease: %s", exc)

    async def poll_once(self, interval: float) -> int:
        """One poll: the number of inbound messages handled. No 2Chat call is made unless an
        SMS went out within the window and this process holds the poller lease.

        Conversations with numbers the bridge texted (acks, STOPs, replies to a request)
        are read first, on every from-number; numbers it did not text come last, and only
        while the poll's ``interval`` lasts (one at least): the next poll starts with the
        known ones again, so a flood of SMS from strangers never holds up an ack or a STOP.
        SMS recorded by an earlier poll but not acted on (its process was killed) go first."""
        started = time.monotonic()
        db = self._db
        since = self._store.now() - self.policy.replies.window
        texted = await db(self._store.texted_since, since)
        if not texted and not await db(self._store.unhandled_inbound):
            return 0
        ttl = timedelta(seconds=max(3 * interval, 10.0))
        if not await db(self._store.acquire_lease, LEASE_NAME, self.holder, ttl):
            return 0
        handled = await self._finish_unhandled()
        moved: list[_Moved] = []
        for from_number, channel in (await self._channels_of(texted)).items():
            moved += await self._moved(channel, from_number, texted[from_number], since)
            await db(self._store.acquire_lease, LEASE_NAME, self.holder, ttl)
        for found in [m for m in moved if m.known]:
            handled += await self._read(found, since)
            await db(self._store.acquire_lease, LEASE_NAME, self.holder, ttl)
        for n, found in enumerate(m for m in moved if not m.known):
            if n and time.monotonic() - started > interval:
                break  # the rest wait for the next poll, behind any new ack
            handled += await self._read(found, since)
            await db(self._store.acquire_lease, LEASE_NAME, self.holder, ttl)
        return handled

    async def _channels_of(self, texted: dict[str, frozenset[str]]) -> dict[str, str]:
        """from-number -> its 2Chat channel, for the from-numbers 2Chat lists (the others
        are logged once: their replies cannot be read)."""
        channels = await self._channel_uuids(texted.keys())
        for from_number in texted:
            if from_number not in channels and from_number not in self._warned:
                self._warned.add(from_number)
                logger.warning(
                    "from_number %s is not one of the 2Chat account's SMS numbers; its "
                    "replies cannot be read (check with: sms-bridge check-config --online)",
                    mask(from_number),
                )
        return {number: channels[number] for number in texted if number in channels}

    async def _channel_uuids(self, from_numbers: Collection[str]) -> dict[str, str]:
        """2Chat channel uuids of the from-numbers, read once and again only when one is
        missing (at most every few minutes: the list costs a credit too)."""
        missing = [number for number in from_numbers if number not in self._channels]
        stale = (
            self._channels_read_at is None
            or time.monotonic() - self._channels_read_at > CHANNELS_REFRESH_SECONDS
        )
        if missing and stale:
            self._channels_read_at = time.monotonic()
            for channel in await self._twochat.list_channels():
                phone, channel_uuid = channel.get("phone_number"), channel.get("uuid")
                if isinstance(phone, str) and isinstance(channel_uuid, str) and channel_uuid:
                    self._channels[e164(phone)] = channel_uuid
        return self._channels

    async def _moved(
        self, channel: str, from_number: str, numbers: frozenset[str], since: datetime
    ) -> list[_Moved]:
        """One conversations call: the conversations that moved since they were last read,
        with a number texted lately (or any, when unknown numbers go to a channel).

        A conversation that ends with an outbound SMS is read too: the bridge may have
        texted that number again after a reply it has not read yet (a STOP, an ack)."""
        unknown_channel = self.policy.replies.unknown_numbers_channel
        since_ts = int(since.timestamp())
        moved: list[_Moved] = []
        for conversation in await self._twochat.conversations(channel):
            contact = e164(conversation.contact)
            if conversation.last_ts is not None and conversation.last_ts < since_ts:
                continue
            known = contact in numbers
            if not known and (unknown_channel is None or conversation.last_direction != "inbound"):
                continue  # nobody the bridge texted: only a new inbound SMS is news
            cursor = await self._db(self._store.reply_cursor, channel, contact)
            if cursor is not None and cursor.marker == conversation.marker:
                continue
            moved.append(_Moved(channel, from_number, contact, conversation, cursor, known))
        return moved

    async def _read(self, found: _Moved, since: datetime) -> int:
        """Read one conversation that moved and act on its new inbound SMS. Anything but a
        2Chat or database failure (which the poll loop backs off from) is logged and
        leaves this conversation for the next poll, never the others."""
        try:
            messages = await self._twochat.messages(found.channel, found.conversation.contact)
            return await self._read_conversation(found, messages, int(since.timestamp()))
        except BridgeError:
            raise
        except Exception:
            logger.exception(
                "replies from %s could not be read; the others go on", mask(found.contact)
            )
            return 0

    async def _read_conversation(
        self, found: _Moved, messages: list[SmsMessage], since_ts: int
    ) -> int:
        """Relay the conversation's inbound messages newer than the cursor, then move it.
        A timestamp later than now (a wrong clock) never moves the cursor past SMS still
        to come."""
        cursor = found.cursor
        floor = max(since_ts, (cursor.last_message_ts or 0) if cursor else 0)
        last_uuid = cursor.last_message_uuid if cursor else None
        last_ts = cursor.last_message_ts if cursor else None
        now_ts = int((self._store.now() + CLOCK_SKEW).timestamp())
        handled = 0
        for message in messages:
            if message.direction != "inbound":
                continue
            if message.uuid == last_uuid or (
                message.timestamp is not None and message.timestamp < floor
            ):
                continue
            if await self._handle(found, message):
                handled += 1
            last_uuid = message.uuid
            last_ts = max(last_ts or 0, min(message.timestamp or 0, now_ts)) or None
        await self._db(
            self._store.save_reply_cursor,
            ReplyCursor(
                found.channel, found.contact, found.conversation.marker, last_uuid, last_ts
            ),
        )
        return handled

    # ------------------------------------------------------------------ one reply
    async def _handle(self, found: _Moved, message: SmsMessage) -> bool:
        """Record one inbound SMS as pending (so it is acted on once), then act on it."""
        db = self._db
        replies = self.policy.replies
        sent_at = (
            datetime.fromtimestamp(message.timestamp, UTC)
            if message.timestamp is not None
            else self._store.now()
        )
        request = await db(
            self._store.latest_request_to,
            found.contact,
            found.from_number,
            since=sent_at - replies.window - CLOCK_SKEW,
            until=sent_at + CLOCK_SKEW,
        )
        kind = classify(
            message.text, replies.ack_words, page=request is not None and request.kind == "page"
        )
        pending = PendingInbound(
            uuid=message.uuid,
            channel_uuid=found.channel,
            contact=found.contact,
            from_number=found.from_number,
            text=message.text,
            name=found.conversation.name,
            kind=kind,
            sent_at=sent_at,
            request_id=request.id if request else None,
        )
        if not await db(self._store.record_inbound, pending):
            return False
        return await self._attempt(pending, request)

    async def _finish_unhandled(self) -> int:
        """Act on the SMS a poll recorded but did not act on: its process was killed in
        between, or the action failed (then only once its next try is due). The actions
        are idempotent (an opt-out, an ack); the reply's post in Slack may show twice,
        never not at all."""
        db = self._db
        finished = 0
        now = self._store.now()
        for pending in await db(self._store.unhandled_inbound):
            if pending.retry_at is not None and pending.retry_at > now:
                continue  # it failed lately: backing off
            logger.info("acting on an SMS from %s recorded earlier", mask(pending.contact))
            request = (
                await db(self._store.get_request, pending.request_id)
                if pending.request_id
                else None
            )
            finished += await self._attempt(pending, request)
        return finished

    async def _attempt(self, pending: PendingInbound, request: StoredRequest | None) -> bool:
        """Act on a recorded SMS; True when done. A failure (a bug must not hold up the SMS
        behind it) is counted on its row, which is tried again later and given up after
        ``MAX_TRIES`` (``bot.sending.inbound_tries``); when the database cannot count it,
        this raises and the poll backs off."""
        try:
            await self._carry_out(pending, request)
            return True
        except Exception as exc:
            tries = pending.tries + 1
            retry_at = next_try(tries, self.policy.replies.poll_interval, self._store.now())
            await self._db(self._store.inbound_failed, pending.uuid, tries, retry_at)
            log_failure(pending, tries, retry_at, exc)
            if retry_at is not None:
                return False
            with contextlib.suppress(Exception):  # the log has said it already
                await self._posts.post(pending, request, given_up_note(pending.kind, tries, exc))
            return False

    async def _carry_out(self, pending: PendingInbound, request: StoredRequest | None) -> None:
        """Act on a recorded SMS, post it in Slack, then mark it done (a failure before the
        mark leaves it for the next poll)."""
        kind = cast(ReplyKind, pending.kind)
        note = pending.note if pending.acted else await self._act(kind, pending, request)
        if not await self._posts.post(pending, request, note):
            await self._db(self._store.inbound_acted, pending.uuid, note)  # acted: post later
            raise NotPosted("Slack took the reply by no route; it is posted at a later poll")
        if request is not None and kind == "ack":
            await self._show_acks(request)
        await self._db(self._store.inbound_handled, pending.uuid)

    async def _act(
        self, kind: ReplyKind, message: PendingInbound, request: StoredRequest | None
    ) -> str | None:
        """Opt out, opt back in or acknowledge; a note for the posted reply, or None."""
        db = self._db
        contact = message.contact
        name = self.policy.contact_name(contact) or self._words.present.show_number(
            contact, self._words.masked()
        )
        if kind == "stop":
            via = f"replied {reply_keyword(message.text).upper()} ({message.uuid})"
            await db(self._store.opt_out, contact, via)
            return (
                f":no_bell: {name} has opted out: the bridge sends them nothing more until "
                "they reply START."
            )
        if kind == "start":
            if await db(self._store.opt_in, contact):
                return f":bell: {name} opted back in: texts to them are allowed again."
            return None
        ladder_note, undecided = None, False
        if kind in ("ack", "reply") and self._ladders is not None:
            ladder_note, undecided = await self._ladders.on_reply(contact, message.text)
        if kind == "ack" and request is not None and not undecided:
            await db(self._store.acknowledge, request.id, contact, message.sent_at, message.uuid)
            return ladder_note or f":white_check_mark: {name} acknowledged the page."
        return ladder_note

    async def _show_acks(self, request: StoredRequest) -> None:
        """The page's acknowledgement summary, one reply in its thread edited as acks come."""
        db = self._db
        reporter = self._reporter
        acks = {ack.number: ack.at for ack in await db(self._store.acknowledgements, request.id)}
        if not acks:  # an ack word that named no page (several were open) acked nothing
            return
        recipients = [Recipient(r.number, r.name) for r in request.recipients]
        text = self._words.present.ack_summary_text(recipients, acks, self._words.masked())
        existing = await db(self._store.ack_summary, request.id)
        if existing is not None:
            await reporter.update(existing[0], existing[1], text)
            return
        if request.thread_ts is None:
            return
        ts = await reporter.post(request.channel_id, text, thread_ts=request.thread_ts)
        if ts is not None:
            await db(self._store.save_ack_summary, request.id, request.channel_id, ts)
