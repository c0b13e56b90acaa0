"""The durable send path: every request and send is recorded before anything is sent.

Exactly once comes from the store: a request moves state by one conditional update, and a
send is claimed ("sending") before 2Chat is called, so double clicks, Slack retries and
several processes can never send it twice. A send left in "sending" by a crash is reported
as outcome unknown, never re-sent on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from bot.core.model import Policy, Recipient
from bot.core.phone import mask
from bot.core.policy import (
    AUTO_PAGE_PREFIX,
    Allow,
    NeedsApproval,
    Refuse,
    SendPlan,
    decide,
    decide_auto_page,
)
from bot.core.segments import analyze
from bot.errors import BridgeError, TwoChatError
from bot.slack.render import (
    Outcome,
    approval_blocks,
    approval_text,
    decided_blocks,
    describe_error,
    inbound_status_text,
    opted_out_reason,
    outcome_blocks,
    outcome_text,
    refusal_text,
    request_text,
    send_status_text,
)
from bot.slack.reporter import Origin, SlackReporter
from bot.sms.fanout import RatePacer, RetryPolicy, fan_out
from bot.sms.twochat import TwoChatClient
from bot.store import (
    NewRecipient,
    NewRequest,
    RateLimited,
    RateLimits,
    SendRecord,
    Store,
    StoredRequest,
)
from bot.tasks import TaskRunner

logger = logging.getLogger(__name__)
T = TypeVar("T")

UNKNOWN_AFTER_CRASH = (
    "outcome unknown: the bridge stopped while sending; 2Chat may or may not have sent it"
)


def plan_of(request: StoredRequest) -> SendPlan:
    """Rebuild what a stored request would send, for display and re-checks."""
    return SendPlan(
        sender=request.sender,
        from_name=request.from_name,
        from_number=request.from_number,
        recipients=tuple(Recipient(r.number, r.name) for r in request.recipients),
        text=request.text,
        segments=analyze(request.text),
    )


def origin_of(request: StoredRequest) -> Origin:
    return Origin(request.channel_id, request.sender, request.response_url, request.thread_ts)


def outcome_of(send: SendRecord) -> Outcome:
    recipient = Recipient(send.number, send.name)
    if send.state == "sent":
        return Outcome(recipient, message_id=send.message_id)
    if send.state == "unknown":
        return Outcome(recipient, error=send.error or UNKNOWN_AFTER_CRASH)
    if send.state == "failed":
        return Outcome(recipient, error=send.error or "failed")
    return Outcome(recipient, pending=True)


class Workflow:
    """Submits, approves, delivers and sweeps requests; Slack output goes through the
    reporter, state through the store (called in threads: it is synchronous)."""

    def __init__(
        self,
        store: Store,
        policy_source: Callable[[], Policy],
        twochat: TwoChatClient,
        reporter: SlackReporter,
        runner: TaskRunner,
        *,
        stale_after: timedelta,
        concurrency: int = 25,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self._policy = policy_source
        self._twochat = twochat
        self.reporter = reporter
        self._runner = runner
        self._stale_after = stale_after
        self._concurrency = concurrency
        self._retry = retry or RetryPolicy()
        # One pacer for the whole process keeps every fan-out under 2Chat's per-minute cap.
        self.pacer = RatePacer(policy_source().limits.requests_per_minute)

    @property
    def policy(self) -> Policy:
        return self._policy()

    async def db(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(method, *args, **kwargs)

    def masked(self) -> bool:
        return self.policy.defaults.mask_numbers

    # ------------------------------------------------------------------ submitting
    async def submit(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        """Record an accepted request and start it; a refusal text (rate limit), or None."""
        if origin.dedupe_key and not await self.db(
            self.store.claim_key, f"submit:{origin.dedupe_key}", timedelta(days=1)
        ):
            logger.info("duplicate delivery %s ignored", origin.dedupe_key)
            return None
        policy = self.policy
        plan = decision.plan
        # Numbers that replied STOP get nothing; a request that only reaches them is refused
        # (others in a group still get theirs; the opted-out sends fail with the reason).
        opted_out = await self.db(self.store.opted_out_numbers)
        if opted_out and all(r.number in opted_out for r in plan.recipients):
            return refusal_text(opted_out_reason(plan.recipients))
        needs_approval = isinstance(decision, NeedsApproval)
        new = NewRequest(
            kind=origin.kind,
            sender=plan.sender,
            channel_id=origin.channel_id,
            from_name=plan.from_name,
            from_number=plan.from_number,
            recipients=tuple(NewRecipient(r.number, r.name) for r in plan.recipients),
            text=plan.text,
            segments=plan.segments.segments,
            encoding=plan.segments.encoding,
            approval_required=needs_approval,
            expires_at=(
                self.store.now() + policy.approvals.expire_after if needs_approval else None
            ),
            response_url=origin.response_url,
            thread_ts=origin.thread_ts,
            dedupe_key=origin.dedupe_key,
        )
        limits = RateLimits(policy.limits.per_sender_per_hour, policy.limits.per_recipient_per_hour)
        try:
            request = await self.db(self.store.create_request, new, limits=limits)
        except RateLimited as exc:
            return refusal_text(exc.user_message)
        if needs_approval:
            self._runner.spawn(self.ask_approval(request), name=f"approval-{request.id}")
        else:
            self._runner.spawn(self.deliver(request.id), name=f"deliver-{request.id}")
        return None

    # ------------------------------------------------------------------ approvals
    async def ask_approval(self, request: StoredRequest) -> None:
        """Post the approval request where approvers look, and tell the requester."""
        policy = self.policy
        channel = policy.approvals.channel or request.channel_id
        body = approval_text(request_text(plan_of(request), self.masked()), request.sender)
        ts = await self.reporter.post(channel, body, blocks=approval_blocks(request.id, body))
        origin = origin_of(request)
        if ts is None:
            if await self.db(
                self.store.transition,
                request.id,
                "expired",
                from_states=["pending_approval"],
                reason="the approval request could not be posted",
            ):
                await self.reporter.tell_requester(
                    origin,
                    refusal_text(f"the approval request could not be posted in <#{channel}>"),
                )
            return
        await self.db(self.store.set_approval_message, request.id, channel, ts)
        if request.thread_ts is None:  # a page keeps answering in its incident thread
            await self.db(self.store.set_thread, request.id, channel, ts)
        await self.reporter.tell_requester(
            origin,
            f":hourglass: Your text needs an approver's OK; the request is in <#{channel}>.",
        )

    def may_decide(self, request: StoredRequest, user: str) -> str | None:
        """Why ``user`` may not decide this request, or None. Checked against the store's
        record and the current policy, never the payload."""
        approvals = self.policy.approvals
        if user not in approvals.approvers:
            return "only approvers can approve or reject texts"
        if user == request.sender and not approvals.allow_self_approval:
            return "you cannot approve or reject your own text"
        return None

    async def decide_request(
        self, request_id: str, user: str, *, approve: bool, reason: str | None = None
    ) -> str | None:
        """Approve or reject; the first decision wins. A message for the clicker, or None."""
        request = await self.db(self.store.get_request, request_id)
        if request is None:
            return "this approval request is unknown to the bridge"
        refusal = self.may_decide(request, user)
        if refusal:
            return refusal
        state = "approved" if approve else "rejected"
        won = await self.db(
            self.store.transition,
            request_id,
            state,
            from_states=["pending_approval"],
            decided_by=user,
            reason=reason,
        )
        if not won:
            current = await self.db(self.store.get_request, request_id)
            return already_decided(current)
        verdict = (
            f":white_check_mark: Approved by <@{user}>"
            if approve
            else (f":no_entry_sign: Rejected by <@{user}>" + (f": {reason}" if reason else ""))
        )
        await self._close_approval(request, verdict)
        if approve:
            await self.reporter.tell_requester(
                origin_of(request), f"{verdict}. Sending your text now."
            )
            await self.deliver(request_id)
        else:
            await self.reporter.tell_requester(origin_of(request), f"{verdict}. Nothing was sent.")
        return None

    async def _close_approval(self, request: StoredRequest, verdict: str) -> None:
        if request.approval_channel and request.approval_ts:
            body = approval_text(request_text(plan_of(request), self.masked()), request.sender)
            await self.reporter.update(
                request.approval_channel,
                request.approval_ts,
                f"{body}\n{verdict}",
                decided_blocks(body, verdict),
            )

    # ------------------------------------------------------------------ delivering
    async def deliver(self, request_id: str) -> None:
        """Send a queued or approved request: exactly one process wins the right to."""
        request = await self.db(self.store.get_request, request_id)
        if request is None or not await self.db(
            self.store.transition, request_id, "sending", from_states=["queued", "approved"]
        ):
            return
        origin = origin_of(request)
        context = request_text(plan_of(request), self.masked())
        try:
            thread_ts = request.thread_ts
            if thread_ts is None:
                thread_ts = await self.reporter.post(request.channel_id, context)
                if thread_ts:
                    await self.db(self.store.set_thread, request_id, request.channel_id, thread_ts)
            sends = await self.db(self.store.sends, request_id)
            queued = [send for send in sends if send.state == "queued"]
            started = time.monotonic()
            live = LiveReply(self, request, thread_ts) if len(queued) > 1 and thread_ts else None
            if live is not None:
                await live.start()
            await self.run_sends(request, queued, live.refresh if live else None)
            elapsed = time.monotonic() - started
            if live is None or not await live.finish(elapsed):
                await self.report(request, thread_ts, context, elapsed=elapsed)
            if request.approval_ts:  # the requester is told every outcome of an approval
                finished = await self.db(self.store.sends, request_id)
                text = outcome_text([outcome_of(send) for send in finished], self.masked())
                await self.reporter.tell_requester(origin, f"{context}\n\n{text}")
        except Exception as exc:
            await self.reporter.tell_requester(origin, f"{context}\n\n:x: {describe_error(exc)}")
            raise
        finally:
            await self.db(self.store.complete_request_if_done, request_id)

    async def report(
        self,
        request: StoredRequest,
        thread_ts: str | None,
        context: str,
        only: set[int] | None = None,
        elapsed: float | None = None,
    ) -> None:
        """Post the outcome of a request's sends (or of ``only`` those) in its thread."""
        text, retry_ids = await self.outcome(request, only, elapsed)
        await self.reporter.post_outcome(
            origin_of(request), thread_ts, text, context, outcome_blocks(text, retry_ids)
        )

    async def outcome(
        self, request: StoredRequest, only: set[int] | None = None, elapsed: float | None = None
    ) -> tuple[str, list[int]]:
        """The outcome text of a request's sends, and the sends a Retry button should offer."""
        sends = [s for s in await self.db(self.store.sends, request.id) if not only or s.id in only]
        text = outcome_text([outcome_of(send) for send in sends], self.masked(), elapsed)
        return text, [send.id for send in sends if send.state == "unknown"]

    async def run_sends(
        self,
        request: StoredRequest,
        sends: list[SendRecord],
        progress: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Claim each send (so no other worker sends it), then fan out to 2Chat: paced to
        the account's rate, temporary errors retried, every result recorded as it lands."""
        refusal = self.recheck(request)
        opted_out = await self.db(self.store.opted_out_numbers)
        going: list[SendRecord] = []
        for send in sends:
            reason = refusal
            if reason is None and send.number in opted_out:
                reason = opted_out_reason([Recipient(send.number, send.name)])
            if reason is None:
                going.append(send)
            elif await self.db(self.store.claim_send, send.id):
                await self.db(self.store.finish_send, send.id, error=f"not sent: {reason}")

        attempted: set[int] = set()

        async def call(send: SendRecord) -> str:
            # Claimed only once the pacer lets it go: a send waiting its turn in a long page
            # stays "queued", so the sweeper never mistakes it for one a crash cut off.
            if send.id in attempted:
                await self.db(self.store.touch_send, send.id)
            elif not await self.db(self.store.claim_send, send.id):
                raise SendTaken(send.id)
            attempted.add(send.id)
            return await self._twochat.send_sms(request.from_number, send.number, request.text)

        async def record(_: int, send: SendRecord, result: str | BaseException) -> None:
            if isinstance(result, SendTaken):
                return  # another worker has it and will report it
            await self._finish(send, result)
            if progress is not None:
                await progress()

        await fan_out(
            going,
            call,
            concurrency=self._concurrency,
            pacer=self.pacer,
            retry=self._retry,
            on_result=record,
        )

    async def _finish(self, send: SendRecord, result: str | BaseException) -> None:
        if isinstance(result, str):
            logger.info("send %d to %s queued as %s", send.id, mask(send.number), result)
            await self.db(self.store.finish_send, send.id, message_id=result)
        elif isinstance(result, TwoChatError):
            logger.warning("send %d to %s failed: %s", send.id, mask(send.number), result)
            await self.db(
                self.store.finish_send,
                send.id,
                error=result.user_message,
                unknown=result.outcome_unknown,
            )
        else:  # a bug: we cannot know whether 2Chat got it
            await self.db(
                self.store.finish_send, send.id, error=describe_error(result), unknown=True
            )

    def recheck(self, request: StoredRequest) -> str | None:
        """Authorize again at send time against the current policy; None means go."""
        if request.sender.startswith(AUTO_PAGE_PREFIX):
            auto = decide_auto_page(
                self.policy, request.sender.removeprefix(AUTO_PAGE_PREFIX), request.text
            )
            return auto.reason if isinstance(auto, Refuse) else None
        decision = decide(
            self.policy,
            request.sender,
            [recipient.number for recipient in request.recipients],
            request.text,
            request.from_name,
        )
        if isinstance(decision, Refuse):
            return decision.reason
        if isinstance(decision, NeedsApproval) and request.decided_by is None:
            return "approval required: an approver must OK this text first"
        return None

    async def retry(self, send_id: int, user: str) -> str | None:
        """Retry one send whose outcome is unknown (or failed): requester or approver only."""
        send = await self.db(self.store.get_send, send_id)
        request = send and await self.db(self.store.get_request, send.request_id)
        if send is None or request is None:
            return "this send is unknown to the bridge"
        if user != request.sender and user not in self.policy.approvals.approvers:
            return "only the requester or an approver can retry this text"
        if not await self.db(self.store.retry_send, send_id):
            return "this send was already retried"
        fresh = await self.db(self.store.get_send, send_id)
        if fresh is not None:
            await self.run_sends(request, [fresh])
        context = request_text(plan_of(request), self.masked())
        await self.report(request, request.thread_ts, context, only={send_id})
        return None

    # ------------------------------------------------------------------ status
    async def status(self, message_id: str, user: str) -> str:
        """``/sms status``: what the bridge knows of one SMS it sent or read, and what
        2Chat's GET /open/sms/message says (asked only for the bridge's own messages)."""
        policy = self.policy
        if policy.rule_for(user) is None and user not in policy.approvals.approvers:
            return ":no_entry: Only people who may send SMS can look up sends."
        send = await self.db(self.store.send_by_message_id, message_id)
        inbound = None if send else await self.db(self.store.inbound_message, message_id)
        if send is None and inbound is None:
            return (
                f":grey_question: The bridge has no SMS with message_id `{message_id}` "
                "(it knows only the texts it sent and the replies it read)."
            )
        request_id = send.request_id if send else inbound.request_id if inbound else None
        request = await self.db(self.store.get_request, request_id) if request_id else None
        remote, remote_error = None, None
        try:
            remote = await self._twochat.message(message_id)
        except TwoChatError as exc:
            remote_error = exc.user_message
        if send is not None:
            acks = await self.db(self.store.acknowledgements, send.request_id)
            at = next((ack.at for ack in acks if ack.number == send.number), None)
            return send_status_text(send, request, at, remote, remote_error, self.masked())
        assert inbound is not None
        sender = Recipient(inbound.contact, policy.contact_name(inbound.contact))
        return inbound_status_text(inbound, sender, request, remote, remote_error, self.masked())

    # ------------------------------------------------------------------ sweeping
    async def sweep(self) -> None:
        """Expire approvals, report sends a crash left in flight, and resume requests that
        were recorded but never started. Safe to run in every process at once."""
        for request in await self.db(self.store.expired_approvals):
            if await self.db(
                self.store.transition, request.id, "expired", from_states=["pending_approval"]
            ):
                verdict = ":alarm_clock: Expired: nobody approved it in time"
                await self._close_approval(request, verdict)
                await self.reporter.tell_requester(
                    origin_of(request), f"{verdict}. Nothing was sent."
                )
        cutoff = self.store.now() - self._stale_after
        for send in await self.db(self.store.stale_sends, cutoff):
            if await self.db(self.store.mark_unknown, send.id, UNKNOWN_AFTER_CRASH):
                request = await self.db(self.store.get_request, send.request_id)
                if request is not None:
                    context = request_text(plan_of(request), self.masked())
                    await self.report(request, request.thread_ts, context, only={send.id})
                    await self.db(self.store.complete_request_if_done, request.id)
        for state in ("queued", "approved"):
            for request in await self.db(
                self.store.requests_in_state, state, updated_before=cutoff
            ):
                await self.deliver(request.id)

    async def sweep_forever(self, interval: float, stop: asyncio.Event) -> None:
        """Sweep every ``interval`` until ``stop``; a sweep in progress is finished, never
        cut off mid-send, so shutdown cannot strand a send it started."""
        while not stop.is_set():
            try:
                await self.sweep()
            except (BridgeError, OSError) as exc:
                logger.warning("sweep failed, will retry: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


class SendTaken(Exception):
    """Another worker claimed this send first; it sends and reports it."""


class LiveReply:
    """One thread reply for a multi-recipient send, edited in place as results arrive (at
    most once a second, so a 100-person page does not hit Slack's chat.update limit)."""

    def __init__(self, workflow: Workflow, request: StoredRequest, thread_ts: str) -> None:
        self._workflow = workflow
        self._request = request
        self._thread_ts = thread_ts
        self._ts: str | None = None
        self._last = 0.0

    async def start(self) -> None:
        count = len(self._request.recipients)
        self._ts = await self._workflow.reporter.post(
            self._request.channel_id,
            f":hourglass_flowing_sand: Sending to {count} recipients…",
            thread_ts=self._thread_ts,
        )

    async def refresh(self) -> None:
        if self._ts is None or time.monotonic() - self._last < 1.0:
            return
        self._last = time.monotonic()
        text, _ = await self._workflow.outcome(self._request)
        await self._workflow.reporter.update(self._request.channel_id, self._ts, text)

    async def finish(self, elapsed: float) -> bool:
        """The final edit; False when there is no reply to edit (then post one instead)."""
        if self._ts is None:
            return False
        text, retry_ids = await self._workflow.outcome(self._request, elapsed=elapsed)
        return await self._workflow.reporter.update(
            self._request.channel_id, self._ts, text, outcome_blocks(text, retry_ids)
        )


def already_decided(request: StoredRequest | None) -> str:
    """Tell a late clicker what the first decision was (state moves on after approval)."""
    if request is None:
        return "this approval request is unknown to the bridge"
    verdict = request.state if request.state in ("rejected", "expired") else "approved"
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return f"this text was already {verdict}{who}"
