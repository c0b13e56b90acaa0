"""The send path's entry points: submit a request, decide an approval, retry a send, look
one up. The work itself is done by the parts the composition root (``bot.app``) builds and
passes in (see the package docstring)."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from datetime import timedelta

from bot.core.access import Action, Subject, Verdict
from bot.core.model import Policy, Recipient
from bot.core.policy import Allow, NeedsApproval
from bot.errors import AllOptedOut, RateLimited, StoreError, TwoChatError
from bot.sending.approvals import Approvals
from bot.sending.escalation import Command, Ladders, Via
from bot.sending.from_records import recorded_targets
from bot.sending.ports import Origin, StatusFound
from bot.sending.reconcile import sent_like, settled_at
from bot.sending.roles import Db, Permissions, PolicySource, Wording
from bot.sending.sends import Delivery, Run
from bot.sms.twochat import TwoChatClient
from bot.store import (
    NewRecipient,
    NewRequest,
    RateLimits,
    Recorded,
    SendRecord,
    StoredRequest,
)
from bot.store.core import answer_within
from bot.store.recording import Ticket
from bot.tasks import Start, TaskRunner

logger = logging.getLogger(__name__)

# Slack shows a timeout after 3 s: the database gets 1.5 s of them here, the rest is for
# Bolt and the answer's own trip.
ANSWER_DEADLINE = 1.5
# 2Chat calls in flight at once for one request. A 5,000-member page at 300 ms a call takes
# 15 s; with a per-minute cap the pacer, not this, sets the pace.
FANOUT_CONCURRENCY = 100
# How long ``/sms status`` waits for its turn at 2Chat (the lowest priority) and its answer.
LOOKUP_WAIT = 20.0
# How long a Slack event or form submission stays claimed against Slack's retries.
DEDUPE_TTL = timedelta(days=1)


class Workflow:
    """Submits, approves, retries and looks up requests: the entry points the chat surfaces
    call. The parts doing the work are built by the composition root (``bot.app``) and
    passed in; so are the roles it uses itself (``bot.sending.roles``)."""

    def __init__(
        self,
        db: Db,
        policy: PolicySource,
        words: Wording,
        permissions: Permissions,
        twochat: TwoChatClient,
        runner: TaskRunner,
        *,
        delivery: Delivery,
        approvals: Approvals,
        ladders: Ladders,
        answer_deadline: float = ANSWER_DEADLINE,
    ) -> None:
        self._db, self._store = db, db.store
        self._policy = policy
        self._words = words
        self._permissions = permissions
        self._twochat = twochat
        self._runner = runner
        self._answer_deadline = answer_deadline
        self._delivery = delivery
        self._approvals = approvals
        self._ladders = ladders

    async def may(self, actor: str, action: Action, subject: Subject | None = None) -> Verdict:
        """Whether ``actor`` may take ``action`` (``Permissions.may``)."""
        return await self._permissions.may(actor, action, subject)

    async def submit(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        """Record an accepted request and start it; a refusal text (rate limit), or None.

        Slack hears the outcome, so recording gets ``answer_deadline`` seconds in all; past
        them this raises StoreError, and the ticket sees to it that a request the store
        records anyway is expired rather than sent.
        """
        ticket = Ticket()
        holder = self._delivery.leases.new_holder()
        try:
            async with asyncio.timeout(self._answer_deadline):
                with answer_within(self._answer_deadline):
                    outcome = await self._record(decision, origin, ticket, holder)
        except TimeoutError:
            outcome = ticket.abandon()
            if outcome is None:
                raise StoreError(
                    f"the database did not answer within {self._answer_deadline:g}s"
                ) from None
        if not isinstance(outcome, Recorded):
            return outcome
        # Started outside the answer's budget: delivery keeps the store's long waits.
        request = outcome.request
        if request.state == "pending_approval":
            self._runner.spawn(self._approvals.ask(request), name=f"approval-{request.id}")
        else:
            self._runner.spawn(
                self._start(outcome, holder),
                name=f"deliver-{request.id}",
                # a page never waits for ad-hoc sends
                start=Start.IN_TURN if origin.kind == "sms" else Start.AFTER_ANSWERS,
            )
        return None

    async def _start(self, recorded: Recorded, holder: str) -> None:
        """Send a recorded request, an escalating page with its ladder."""
        if recorded.started:
            deliver = functools.partial(self._delivery.deliver_recorded, recorded, holder)
        else:  # found by its dedupe key: whoever recorded it started it
            deliver = functools.partial(self._delivery.deliver, recorded.request.id)
        await self._ladders.escalating(recorded.request, deliver)

    async def _record(
        self, decision: Allow | NeedsApproval, origin: Origin, ticket: Ticket, holder: str
    ) -> Recorded | str | None:
        """Record the request in one round trip (see ``Store.record_request``): recorded,
        and started under ``holder``'s lease unless it needs approval; or a refusal text; or
        None for a repeated delivery (a Slack retry, a replayed request)."""
        policy, plan = self._policy(), decision.plan
        claims = [(f"submit:{origin.dedupe_key}", DEDUPE_TTL)] if origin.dedupe_key else []
        signature = origin.replay.take() if origin.replay is not None else None
        if signature is not None:
            claims.append(signature)
        new = await self._ladders.prepare(self._new_request(decision, origin, policy))
        if isinstance(new, str):
            return self._words.present.refusal_text(new, self._words.masked())
        limits = policy.limits
        try:
            recorded = await self._db(
                self._store.record_request,
                new,
                limits=RateLimits(limits.per_sender_per_hour, limits.per_recipient_per_hour),
                ticket=ticket,
                claims=claims,
                start=(holder, self._delivery.leases.ttl),
            )
        except RateLimited as exc:
            await self._ladders.release(new)
            return self._words.present.refusal_text(exc.user_message)
        except AllOptedOut:
            # Numbers that replied STOP get nothing; a request that only reaches them is
            # refused (others in a group still get theirs; those sends fail with the reason).
            await self._ladders.release(new)
            reason = self._words.present.opted_out_reason(plan.recipients)
            return self._words.present.refusal_text(reason, self._words.masked())
        if recorded is None:
            await self._ladders.release(new)
            logger.info("repeated delivery of %s ignored", origin.dedupe_key or "a signed request")
        return recorded

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
                self._store.now() + policy.approvals.expire_after if needs_approval else None
            ),
            response_url=origin.response_url,
            thread_ts=origin.thread_ts,
            dedupe_key=origin.dedupe_key,
            targets=recorded_targets(plan.targets),
        )

    async def decide_request(
        self, request_id: str, user: str, *, approve: bool, reason: str | None = None
    ) -> str | None:
        """Approve or reject; the first decision wins. A message for the clicker, or None."""
        return await self._approvals.decide(request_id, user, approve=approve, reason=reason)

    async def may_decide(self, request: StoredRequest, user: str, *, approve: bool) -> str | None:
        """Why ``user`` may not decide this request, or None (the approvals say, with
        Slack user groups as they are now)."""
        return await self._approvals.may_decide(request, user, approve=approve)

    async def retry(self, send_id: int, user: str, attempts: int | None = None) -> str | None:
        """Retry one send whose outcome is unknown (or failed): requester or approver only;
        once for the attempt the button was offered for (``attempts``)."""
        send = await self._db(self._store.get_send, send_id)
        if send is None:
            return "this send is unknown to the bridge"
        request = await self._db(self._store.get_request, send.request_id)
        if request is None:
            return "this send is unknown to the bridge"
        verdict = await self._permissions.may(user, Action.RETRY, Subject(requester=request.sender))
        if not verdict.allowed:
            return verdict.refusal()
        if early := self._too_early(send, attempts):
            return early
        if not await self._db(self._store.retry_send, send_id, attempts):
            return "this send was already retried"
        note = None
        if send.state == "unknown":
            note = await self._settle_from_2chat(request, send)
        fresh = await self._db(self._store.get_send, send_id)
        if note is None and fresh is not None:
            await self._delivery.run_sends(Run(request), [fresh])
        context = self._words.describe(request)
        await self._delivery.report(request, request.thread_ts, context, only={send_id})
        return note

    def _too_early(self, send: SendRecord, attempts: int | None) -> str | None:
        """Why the Retry of this unknown send must wait, or None: 2Chat may still be working
        on the attempt (a call that timed out), so its conversation cannot tell yet whether
        it has the SMS. Such a click does not use up the Retry the button was offered for."""
        ready = settled_at(send, self._twochat.call_limit)
        if ready is None or (attempts is not None and attempts != send.attempts):
            return None  # nothing to wait for, or the store says it was retried already
        wait = math.ceil((ready - self._store.now()).total_seconds())
        if wait <= 0:
            return None
        return (
            "not retried yet: 2Chat may still be working on the attempt whose outcome is "
            f"unknown, so it cannot tell yet whether it sent this SMS. Retry from "
            f"{ready:%H:%M:%S} UTC (in {wait} s); the Retry button stays."
        )

    async def _settle_from_2chat(self, request: StoredRequest, send: SendRecord) -> str | None:
        """Before a retried unknown send goes out again: if 2Chat has its SMS already, it is
        recorded as sent; if 2Chat cannot say, it stays unknown. A note for the clicker
        then, or None: send it."""
        db, store = self._db, self._store
        try:
            found = await self._accepted_already(request, send)
        except TwoChatError as exc:
            error = f"2Chat could not say whether it has this SMS already: {exc.user_message}"
            if await db(store.claim_send, send.id):
                await db(store.finish_send, send.id, error=error, unknown=True)
            return f"not retried: {error}"
        if found is None:
            return None
        if await db(store.claim_send, send.id):
            await db(store.finish_send, send.id, message_id=found)
        return "2Chat had this SMS already: it was not sent again"

    async def _accepted_already(self, request: StoredRequest, send: SendRecord) -> str | None:
        """2Chat's id of this unknown send's SMS if 2Chat has it, and no other send of the
        bridge recorded it (``bot.sending.reconcile``)."""
        for message_id in await sent_like(self._twochat, request, send):
            if await self._db(self._store.send_by_message_id, message_id) is None:
                return message_id
        return None

    async def status(self, message_id: str, user: str) -> str:
        """``/sms status``: what the bridge knows of one SMS it sent or read, and what
        2Chat's GET /open/sms/message says (asked only for the bridge's own messages)."""
        verdict = await self._permissions.may(user, Action.STATUS)
        if not verdict.allowed:
            return f":no_entry: {verdict.sentence()}"
        policy = self._policy()
        send = await self._db(self._store.send_by_message_id, message_id)
        inbound = None if send else await self._db(self._store.inbound_message, message_id)
        if send is None and inbound is None:
            return (
                f":grey_question: The bridge has no SMS with message_id `{message_id}` "
                "(it knows only the texts it sent and the replies it read)."
            )
        request_id = send.request_id if send else inbound.request_id if inbound else None
        request = await self._db(self._store.get_request, request_id) if request_id else None
        remote, remote_error = None, None
        try:
            async with asyncio.timeout(LOOKUP_WAIT):  # behind every text and poll
                remote = await self._twochat.message(message_id)
        except TwoChatError as exc:
            remote_error = exc.user_message
        except TimeoutError:
            remote_error = "2Chat was not asked: its per-minute budget is busy with texts now"
        at, sender = None, None
        if send is not None:
            acks = await self._db(self._store.acknowledgements, send.request_id)
            at = next((ack.at for ack in acks if ack.number == send.number), None)
        elif inbound is not None:
            sender = Recipient(inbound.contact, policy.contact_name(inbound.contact))
        found = StatusFound(
            send, inbound, sender, request, at, remote, remote_error, self._words.masked()
        )
        return self._words.present.status_text(found)

    async def may_ack(self, escalation_id: str, actor: str, action: Action) -> Verdict:
        """Whether ``actor`` may ack this page (``Ladders.may_ack``)."""
        return await self._ladders.may_ack(escalation_id, actor, action)

    async def ack_page(self, escalation_id: str, actor: str, via: Via, label: str) -> bool:
        """Ack a page from Slack; False when it was handled already (``Ladders.ack``)."""
        return await self._ladders.ack(escalation_id, actor, via, label)

    async def command_page(self, escalation_id: str, user: str, what: Command) -> str | None:
        """Escalate a page now or stop it; why not, or None (``Ladders.command``)."""
        return await self._ladders.command(escalation_id, user, what)
