"""Delivering a request: claim each send, fan out to 2Chat, record and report each result."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from bot.core.directory import DirectorySource, no_directory
from bot.core.escalation import is_ladder_request
from bot.core.model import Recipient
from bot.core.phone import mask
from bot.core.policy import AUTO_PAGE_PREFIX, Recheck, page_targets, recheck, recheck_auto_page
from bot.errors import SendTaken, StoreError, TwoChatError
from bot.sending.from_records import (
    UNKNOWN_AFTER_CRASH,
    origin_of,
    outcome_of,
    priority_of,
    targets_of,
)
from bot.sending.leases import Held, RequestLeases, heartbeat
from bot.sending.ports import Reporter, RetryOffer
from bot.sending.progress import LiveReply
from bot.sending.roles import Db, PolicySource, Wording, read_rosters
from bot.sms.budget import RatePacer
from bot.sms.fanout import RetryPolicy, fan_out
from bot.sms.twochat import TwoChatClient
from bot.store import Recorded, SendRecord, SendState, StoredRequest
from bot.store.sends import Thread

logger = logging.getLogger(__name__)

# Hears each send's result as it lands (a message id, or the error).
Progress = Callable[[str | BaseException], Awaitable[None]]
# What a request's delivery is run through: (request, deliver) -> runs deliver (see
# ``Ladders.escalating``, which starts an escalating page's ladder around it).
Around = Callable[[StoredRequest, Callable[[], Awaitable[object]]], Awaitable[None]]


@dataclass
class Run:
    """One delivery of a request, and what it knows without asking the store again: a
    request just recorded comes with its sends and opt-outs, the thread it posted is stored
    with its first claim, and its lease is given up with its last send's finish."""

    request: StoredRequest
    recorded: tuple[SendRecord, ...] | None = None
    opted_out: frozenset[str] | None = None
    held: Held | None = None
    thread: tuple[str, str] | None = None  # (channel, ts) posted, not stored yet
    message_owed: bool = False  # Slack was down for the request message: posted later
    finished: dict[int, SendRecord] = field(default_factory=dict)
    completed: bool = False
    taken_elsewhere: bool = False
    resumed: bool = False  # taken over from a process that stopped mid-way

    def take_thread(self) -> Thread | None:
        """The posted thread for the next store call to store, once."""
        if self.thread is None:
            return None
        (channel, ts), self.thread = self.thread, None
        return self.request.id, channel, ts

    def sends_now(self) -> list[SendRecord] | None:
        """Every send as it stands, when this run saw all of them end; else None (read
        them from the store)."""
        if self.recorded is None or self.taken_elsewhere:
            return None
        return [self.finished.get(send.id, send) for send in self.recorded]


class Delivery:
    """Sends a request's sends and reports their outcome in its thread."""

    def __init__(
        self,
        db: Db,
        policy: PolicySource,
        words: Wording,
        reporter: Reporter,
        twochat: TwoChatClient,
        pacer: RatePacer,
        leases: RequestLeases,
        *,
        concurrency: int,
        retry: RetryPolicy,
        directory: DirectorySource = no_directory,
        on_outcome: Callable[[str, str], None] = lambda result, reason: None,
    ) -> None:
        """``directory`` reads Slack rosters for the recheck at send time; ``on_outcome``
        hears how each send ended as (result, reason), e.g. the metrics."""
        self._db, self._store = db, db.store
        self._policy = policy
        self._words = words
        self._reporter = reporter
        self._directory = directory
        self._on_outcome = on_outcome
        self._twochat = twochat
        self._pacer = pacer
        self.leases = leases
        self._concurrency = concurrency
        self._retry = retry
        # send id -> (request id, 2Chat message id) of accepted sends not recorded yet.
        self._unrecorded: dict[int, tuple[str, str]] = {}

    async def deliver(self, request_id: str) -> None:
        """Send a queued or approved request: exactly one process wins the right to, and
        holds the request's lease while it runs so no sweeper takes it over."""
        store = self._store
        request = await self._db(store.get_request, request_id)
        if request is None or not await self._db(
            store.transition, request_id, "sending", from_states=["queued", "approved"]
        ):
            return
        async with self.leases.hold(request_id) as held:
            await self._deliver(Run(request, held=held))

    async def deliver_recorded(self, recorded: Recorded, holder: str) -> None:
        """Send a request recorded "sending" under ``holder``'s lease (``record_request``):
        its sends and opt-outs came with it, so only each send's claim and finish remain."""
        async with self.leases.keep(recorded.request.id, holder) as held:
            run = Run(recorded.request, recorded.sends, recorded.opted_out, held)
            await self._deliver(run)

    async def resume(self, request_id: str, around: Around) -> bool:
        """Finish a request left "sending" by a process that died (nobody renews its lease):
        sends it claimed become "unknown"; sends it never claimed cannot have reached 2Chat,
        so they are sent, through ``around`` (which starts a page's ladder if that process
        died before it did); its live reply is finished. True when this call took it over."""
        store = self._store
        async with self.leases.hold(request_id) as held:
            request = await self._db(store.get_request, request_id) if held else None
            if request is None or request.state != "sending":
                return False
            logger.warning("resuming request %s, abandoned by a stopped process", request_id)
            for send in await self._db(store.sends, request_id):
                if send.state == "sending":  # its process is gone: a late answer still wins
                    await self._db(store.mark_unknown, send.id, UNKNOWN_AFTER_CRASH)
            run = Run(request, held=held, resumed=True)
            await around(request, functools.partial(self._deliver, run))
            return True

    async def _deliver(self, run: Run) -> None:
        """Run a request this process holds: its thread, its sends, its outcome."""
        request = run.request
        origin = origin_of(request)
        context = self._words.describe(request)
        try:
            thread_ts = request.thread_ts
            if thread_ts is None:
                thread_ts = await self._post_request_message(run, context)
            await self._send_and_report(run, thread_ts, context, own=run.thread is not None)
            if request.approval_ts:  # the requester is told every outcome of an approval
                text, _ = await self.outcome(request, run=run)
                await self._reporter.tell_requester(origin, f"{context}\n\n{text}")
        except Exception as exc:
            await self._reporter.tell_requester(
                origin, f"{context}\n\n:x: {self._words.present.describe_error(exc)}"
            )
            raise
        finally:
            await self._settle(run)

    async def _post_request_message(self, run: Run, context: str) -> str | None:
        """Post the request message, unless a process that stopped before it stored the
        message's ts posted it already (a resumed request finds it in the channel): one
        message per request, which ends up saying what happened."""
        reporter, request = self._reporter, run.request
        ts = None
        if run.resumed:  # a rare path: the history read is Slack's most rate-limited
            ts = await reporter.find_request_message(request.channel_id, request.id)
        if ts is None:
            posted = await reporter.try_post(request.channel_id, context, request_id=request.id)
            ts, run.message_owed = posted.ts, posted.passing
        if ts:
            run.thread = (request.channel_id, ts)
        return ts

    async def _settle(self, run: Run) -> None:
        """What the run's last finish did not do: store a thread no claim carried, complete
        the request (a send ended elsewhere, or none was sent)."""
        db, store = self._db, self._store
        thread = run.take_thread()
        if thread is not None:
            await db(store.set_thread, *thread)
        if not run.completed:
            await db(store.complete_request_if_done, run.request.id)

    async def _send_and_report(
        self, run: Run, thread_ts: str | None, context: str, *, own: bool
    ) -> None:
        """Send the queued sends; a reply edited live for several, one outcome for one.
        ``own``: the thread's message is the request message this run posted, so its status
        line may be edited in."""
        db, store, request = self._db, self._store, run.request
        sends = run.recorded if run.recorded is not None else await db(store.sends, request.id)
        queued = [send for send in sends if send.state == "queued"]
        started = time.monotonic()
        live = None
        # Only a request run before (resumed) can have a progress reply already.
        progress_ts = (
            None if run.recorded is not None else await db(store.progress_message, request.id)
        )
        if thread_ts and (progress_ts or len(queued) > 1):
            live = LiveReply(
                self._db,
                self._policy,
                self._words,
                self._reporter,
                request,
                thread_ts,
                len(queued),
                per_minute=self._pacer.per_minute,
                own=own,
                outcome=functools.partial(self.outcome, request, run=run),
            )
            await live.start(progress_ts)
        await self.run_sends(run, queued, live.refresh if live else None)
        elapsed = time.monotonic() - started
        landed = live is not None and await live.finish(elapsed)
        if not landed:
            landed = await self.report(request, thread_ts, context, elapsed=elapsed, run=run)
        if landed and run.completed and run.held is not None:
            # The last send's finish marked the outcome owed (a kill before it landed leaves
            # it to the sweeper); it landed, so no longer, and the lease goes with it.
            await db(store.report_landed, request.id, run.held.holder)
            run.held.released = True

    async def report(
        self,
        request: StoredRequest,
        thread_ts: str | None,
        context: str,
        only: set[int] | None = None,
        elapsed: float | None = None,
        run: Run | None = None,
    ) -> bool:
        """Post the outcome of a request's sends (or of ``only`` those) in its thread. When
        Slack refuses, the requester hears privately at once, and a full outcome is owed to
        the thread: the sweeper posts it there later (``post_owed_report``). False while it
        is owed (True also when it can never land: the request message was refused for
        good)."""
        text, retry_offers = await self.outcome(request, only, elapsed, run)
        reporter = self._reporter
        blocks = self._words.present.outcome_blocks(text, retry_offers)
        if thread_ts is not None and await reporter.post(
            request.channel_id, text, blocks=blocks, thread_ts=thread_ts
        ):
            return True
        await reporter.tell_requester(origin_of(request), f"{context}\n\n{text}")
        owed = thread_ts is not None or (run is not None and run.message_owed)
        if owed and only is None:
            await self._db(self._store.set_report_pending, request.id, True)
            return False
        return True

    async def post_owed_report(self, request_id: str) -> None:
        """Post a request's outcome that Slack refused before, once, by whoever holds its
        lease, under its request message (posted first when Slack refused that too); it
        stays owed (and is tried again) while Slack keeps refusing."""
        store = self._store
        async with self.leases.hold(request_id) as held:
            request = await self._db(store.get_request, request_id) if held else None
            if request is None or request.state != "completed":
                return
            if not await self._db(store.report_owed, request_id):
                return
            if request.thread_ts is None:
                ts = await self._reporter.post(request.channel_id, self._words.describe(request))
                if ts is None:
                    return
                await self._db(store.set_thread, request.id, request.channel_id, ts)
                request = replace(request, thread_ts=ts)
            text, retry_offers = await self.outcome(request)
            blocks = self._words.present.outcome_blocks(text, retry_offers)
            # A live reply a stopped process left saying "Sending…" gets the outcome.
            live_ts = await self._db(store.progress_message, request_id)
            if (
                live_ts is not None
                and await self._reporter.update(request.channel_id, live_ts, text, blocks)
            ) or await self._reporter.post(
                request.channel_id, text, blocks=blocks, thread_ts=request.thread_ts
            ):
                await self._db(store.set_report_pending, request_id, False)

    async def outcome(
        self,
        request: StoredRequest,
        only: set[int] | None = None,
        elapsed: float | None = None,
        run: Run | None = None,
    ) -> tuple[str, list[RetryOffer]]:
        """The outcome text of a request's sends, and the sends a Retry button should offer;
        from what ``run`` saw when it saw every send end, else read back."""
        known = run.sends_now() if run is not None else None
        every = known if known is not None else await self._db(self._store.sends, request.id)
        sends = [send for send in every if not only or send.id in only]
        outcomes = [outcome_of(send) for send in sends]
        text = self._words.present.outcome_text(outcomes, self._words.masked(), elapsed, request.id)
        return text, [(send.id, send.attempts) for send in sends if send.state == "unknown"]

    async def run_sends(
        self, run: Run, sends: list[SendRecord], progress: Progress | None = None
    ) -> None:
        """Claim each send (so no other worker sends it), then fan out to 2Chat: paced to
        the account's rate, temporary errors retried, every result recorded as it lands."""
        db, store, request = self._db, self._store, run.request
        going = await self._hold_back(run, sends)
        # A claimed send's heartbeat, from its claim to its recorded end: a retry waiting
        # for budget (after a 429, for as long as it takes) is live work, not a crash.
        beats: dict[int, contextlib.AsyncExitStack] = {}
        calls: Counter[int] = Counter()  # 2Chat calls per send: each counts as an attempt
        left = len(going)

        async def call(send: SendRecord) -> str:
            # Claimed only once the pacer lets it go: a send waiting its turn in a long page
            # stays "queued", so the sweeper never mistakes it for one a crash cut off.
            if send.id in beats:
                await db(store.touch_send, send.id)
            elif await db(store.claim_send, send.id, thread=run.take_thread()):
                beats[send.id] = beat = contextlib.AsyncExitStack()
                renew = functools.partial(db, store.keep_claim, send.id)
                await beat.enter_async_context(heartbeat(renew, self.leases.beat_every))
            else:
                raise SendTaken(send.id)
            calls[send.id] += 1
            return await self._twochat.send_sms(request.from_number, send.number, request.text)

        async def record(_: int, send: SendRecord, result: str | BaseException) -> None:
            nonlocal left
            left -= 1
            if send.id in beats:
                await beats.pop(send.id).aclose()
            if isinstance(result, SendTaken):
                run.taken_elsewhere = True  # another worker has it and will report it
                return
            tried = replace(send, attempts=send.attempts + calls[send.id])
            await self._finish(run, tried, result, last=left == 0)
            if progress is not None:
                await progress(result)

        try:
            await fan_out(
                going,
                call,
                concurrency=self._concurrency,
                pacer=self._pacer,
                retry=self._retry,
                on_result=record,
                priority=priority_of(request),
            )
        finally:
            for beat in beats.values():
                await beat.aclose()

    async def _hold_back(self, run: Run, sends: list[SendRecord]) -> list[SendRecord]:
        """The sends that may go; the others (policy refuses, number opted out) are marked
        failed with the reason."""
        db, store = self._db, self._store
        checked = await self.recheck(run.request)
        opted_out = run.opted_out
        if opted_out is None:
            opted_out = await db(store.opted_out_numbers, [send.number for send in sends])
        going: list[SendRecord] = []
        for send in sends:
            reason = checked.reason(send.number)
            if reason is None and send.number in opted_out:
                reason = self._words.present.opted_out_reason([Recipient(send.number, send.name)])
            if reason is None:
                going.append(send)
            elif await db(store.claim_send, send.id, thread=run.take_thread()):
                error = f"not sent: {reason}"
                await db(store.finish_send, send.id, error=error)
                run.finished[send.id] = replace(send, state="failed", error=error)
            else:
                run.taken_elsewhere = True
        return going

    async def _finish(
        self, run: Run, send: SendRecord, result: str | BaseException, *, last: bool
    ) -> None:
        """Record one send's end; the last one of a run holding the lease also completes
        the request and gives the lease up, in the same round trip."""
        if isinstance(result, str):
            logger.info(
                "send %d to %s queued as %s",
                send.id,
                mask(send.number),
                result,
                extra={"send_id": send.id},
            )
            ended = replace(send, state="sent", message_id=result, error=None)
            self._on_outcome("sent", "")
        elif isinstance(result, TwoChatError):
            logger.warning(
                "send %d to %s failed: %s",
                send.id,
                mask(send.number),
                result,
                extra={"send_id": send.id, "twochat_status": result.status},
            )
            state: SendState = "unknown" if result.outcome_unknown else "failed"
            ended = replace(send, state=state, message_id=None, error=result.user_message)
            reason = f"http_{result.status}" if result.status else "no_answer"
            self._on_outcome(state, reason)
        else:  # a bug: we cannot know whether 2Chat got it
            ended = replace(
                send,
                state="unknown",
                message_id=None,
                error=self._words.present.describe_error(result),
            )
            self._on_outcome("unknown", "internal_error")
        run.finished[send.id] = ended
        try:
            await self._record(run, ended, last=last)
        except Exception as exc:
            if ended.message_id is not None:
                self._unrecorded[send.id] = (run.request.id, ended.message_id)
            if not isinstance(exc, StoreError):
                raise  # a bug: the fan-out logs it with its traceback
            logger.warning("send %d: %s", send.id, _unrecorded_next(ended, exc))

    async def _record(self, run: Run, ended: SendRecord, *, last: bool) -> None:
        db, store = self._db, self._store
        message_id, error, unknown = ended.message_id, ended.error, ended.state == "unknown"
        if not last or run.held is None:
            await db(
                store.finish_send, ended.id, message_id=message_id, error=error, unknown=unknown
            )
            return
        _, run.completed = await db(
            store.finish_last_send,
            ended.id,
            (run.request.id, run.held.holder),
            message_id=message_id,
            error=error,
            unknown=unknown,
        )

    async def record_held(self) -> None:
        """Record the sends 2Chat accepted while the database was failing (the sweeper's
        first step, so none of them is taken for one a crash cut off and offered for a
        Retry that would text again); raises while the database still fails."""
        db, store = self._db, self._store
        for send_id, (request_id, message_id) in list(self._unrecorded.items()):
            await db(store.finish_send, send_id, message_id=message_id)
            del self._unrecorded[send_id]
            logger.info("send %d: its held 2Chat acceptance is recorded", send_id)
            await db(store.complete_request_if_done, request_id)

    async def recheck(self, request: StoredRequest) -> Recheck:
        """Authorize again at send time against the current policy and Slack user groups as
        they are now: rosters the request named are read again, so someone who left one is
        not texted and the others still are. Slack is asked only for what the check reads."""
        policy = self._policy()
        if is_ladder_request(request.dedupe_key):
            return Recheck()  # a tier or "acked" SMS of a ladder: the policy's ladder is its rule
        numbers = [recipient.number for recipient in request.recipients]
        if request.sender.startswith(AUTO_PAGE_PREFIX):
            channel = request.sender.removeprefix(AUTO_PAGE_PREFIX)
            targets = page_targets(policy, channel)
            rosters = await read_rosters(self._directory, policy, targets, patient=True)
            return recheck_auto_page(policy, channel, request.text, numbers, rosters)
        checked = recheck(
            policy,
            request.sender,
            targets_of(request) or numbers,
            numbers,
            request.text,
            request.from_name,
            await self._directory(policy, patient=True),
        )
        if checked.needs_approval and request.decided_by is None:
            return Recheck("approval required: an approver must OK this text first")
        return checked


def _unrecorded_next(ended: SendRecord, exc: StoreError) -> str:
    """What becomes of a send's outcome the database failed to record, for the log: not an
    error, since nothing is lost."""
    if ended.message_id is not None:
        return (
            f"2Chat accepted it as {ended.message_id}, but the database did not record that "
            f"({exc}); held in this process and recorded as soon as the database answers"
        )
    return (
        f"its outcome ({ended.state}) was not recorded, the database failed ({exc}); it "
        "stays 'sending' until a sweeper finds its claim lapsed and marks it outcome unknown"
    )
