"""The send path's entry points: submit a request, decide an approval, retry a send, look
one up. The work itself is done by the parts this assembles (see the package docstring)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from bot.core.model import Policy, Recipient
from bot.core.policy import Allow, NeedsApproval
from bot.errors import StoreError, TwoChatError
from bot.sending.approvals import Approvals
from bot.sending.escalation import Ladders
from bot.sending.leases import RequestLeases
from bot.sending.sends import Delivery
from bot.sending.services import Services
from bot.sending.sweeper import Sweeper
from bot.slack.render import (
    inbound_status_text,
    opted_out_reason,
    refusal_text,
    send_status_text,
)
from bot.slack.reporter import Origin, SlackReporter
from bot.sms.fanout import RatePacer, RetryPolicy
from bot.sms.twochat import TwoChatClient
from bot.store import NewRecipient, NewRequest, RateLimited, RateLimits, Store, StoredRequest
from bot.store.core import answer_within
from bot.store.requests import Ticket
from bot.tasks import TaskRunner

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

# Slack shows a timeout after 3 s. Before a listener runs, the replay check may take 1 s
# (bot/server.py); the database gets 1.5 s here, the rest is for the answer's own trip.
ANSWER_WITHIN = 1.5


class Workflow(Services):
    """Submits, approves, delivers and sweeps requests; Slack output goes through the
    reporter, state through the store."""

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
        answer_within: float = ANSWER_WITHIN,
    ) -> None:
        super().__init__(store, policy_source, reporter)
        self.answer_within = answer_within
        self._twochat = twochat
        self._runner = runner
        # One pacer for the whole process keeps every fan-out under 2Chat's per-minute cap.
        self.pacer = RatePacer(policy_source().limits.requests_per_minute)
        # A lease nobody renewed for as long as a send may take marks a process that died.
        leases = RequestLeases(self, stale_after)
        self.delivery = Delivery(
            self, twochat, self.pacer, leases, concurrency=concurrency, retry=retry or RetryPolicy()
        )
        self.approvals = Approvals(self, self.delivery)
        self.ladders = Ladders(self, self.delivery)
        self.sweeper = Sweeper(
            self, self.delivery, self.approvals, stale_after=stale_after, ladders=self.ladders
        )

    async def submit(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        """Record an accepted request and start it; a refusal text (rate limit), or None.

        Slack hears the outcome, so recording gets ``answer_within`` seconds in all; past
        them this raises StoreError, and the ticket sees to it that a request the store
        records anyway is expired rather than sent.
        """
        ticket = Ticket()
        try:
            async with asyncio.timeout(self.answer_within):
                with answer_within(self.answer_within):
                    outcome = await self._record(decision, origin, ticket)
        except TimeoutError:
            outcome = ticket.abandon()
            if outcome is None:
                raise StoreError(
                    f"the database did not answer within {self.answer_within:g}s"
                ) from None
        if not isinstance(outcome, StoredRequest):
            return outcome
        # Started outside the answer's budget: delivery keeps the store's long waits.
        if outcome.state == "pending_approval":
            self._runner.spawn(self.approvals.ask(outcome), name=f"approval-{outcome.id}")
        else:
            self._runner.spawn(self._start(outcome), name=f"deliver-{outcome.id}")
        return None

    async def _start(self, request: StoredRequest) -> None:
        """Start an escalating page's ladder (a no-op for other requests), send it, then
        show the ladder's board with whom tier 1 reached."""
        opened = False
        try:
            opened = await self.ladders.begin(request)
        finally:
            await self.delivery.deliver(request.id)
        if opened:
            await self.ladders.refresh(request.id)

    async def _record(
        self, decision: Allow | NeedsApproval, origin: Origin, ticket: Ticket
    ) -> StoredRequest | str | None:
        """The request as recorded; or a refusal text; or None for a duplicate delivery."""
        key = f"submit:{origin.dedupe_key}" if origin.dedupe_key else None
        if key and not await self.db(self.store.claim_key, key, timedelta(days=1)):
            logger.info("duplicate delivery %s ignored", origin.dedupe_key)
            return None
        outcome = await self._record_claimed(decision, origin, ticket)
        if key and isinstance(outcome, str):  # refused: the same form or event may try again
            await self.db(self.store.release_key, key)
        return outcome

    async def _record_claimed(
        self, decision: Allow | NeedsApproval, origin: Origin, ticket: Ticket
    ) -> StoredRequest | str:
        """Record a request whose delivery is not a duplicate; or a refusal text."""
        policy, plan = self.policy, decision.plan
        # Numbers that replied STOP get nothing; a request that only reaches them is refused
        # (others in a group still get theirs; the opted-out sends fail with the reason).
        opted_out = await self.db(self.store.opted_out_numbers)
        if opted_out and all(r.number in opted_out for r in plan.recipients):
            return refusal_text(opted_out_reason(plan.recipients), self.masked())
        limits = policy.limits
        new = await self.ladders.prepare(self._new_request(decision, origin, policy))
        try:
            return await self.db(
                self.store.create_request,
                new,
                limits=RateLimits(limits.per_sender_per_hour, limits.per_recipient_per_hour),
                ticket=ticket,
            )
        except RateLimited as exc:
            return refusal_text(exc.user_message)

    async def answering(self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """A store call while Slack waits for the answer (``/sms help``): StoreError rather
        than a wait Slack would time out on."""
        try:
            async with asyncio.timeout(self.answer_within):
                with answer_within(self.answer_within):
                    return await self.db(method, *args, **kwargs)
        except TimeoutError:
            raise StoreError(
                f"the database did not answer within {self.answer_within:g}s"
            ) from None

    def _new_request(
        self, decision: Allow | NeedsApproval, origin: Origin, policy: Policy
    ) -> NewRequest:
        """The record of an accepted request; one that needs approval expires unapproved."""
        plan = decision.plan
        needs_approval = isinstance(decision, NeedsApproval)
        return NewRequest(
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

    async def decide_request(
        self, request_id: str, user: str, *, approve: bool, reason: str | None = None
    ) -> str | None:
        """Approve or reject; the first decision wins. A message for the clicker, or None."""
        return await self.approvals.decide(request_id, user, approve=approve, reason=reason)

    async def may_decide(self, request: StoredRequest, user: str) -> str | None:
        """Why ``user`` may not decide this request, or None (the approvals say, with
        Slack user groups as they are now)."""
        directory = await self.directory(self.policy)
        return self.approvals.may_decide(request, user, directory)

    async def retry(self, send_id: int, user: str) -> str | None:
        """Retry one send whose outcome is unknown (or failed): requester or approver only."""
        send = await self.db(self.store.get_send, send_id)
        if send is None:
            return "this send is unknown to the bridge"
        request = await self.db(self.store.get_request, send.request_id)
        if request is None:
            return "this send is unknown to the bridge"
        if user != request.sender and user not in self.policy.approvals.approvers:
            return "only the requester or an approver can retry this text"
        if not await self.db(self.store.retry_send, send_id):
            return "this send was already retried"
        fresh = await self.db(self.store.get_send, send_id)
        if fresh is not None:
            await self.delivery.run_sends(request, [fresh])
        context = self.describe(request)
        await self.delivery.report(request, request.thread_ts, context, only={send_id})
        return None

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

    async def sweep_forever(self, interval: float, stop: asyncio.Event) -> None:
        """Sweep every ``interval`` until ``stop`` (the sweeper says how)."""
        await self.sweeper.sweep_forever(interval, stop)
