"""Approve-before-send: the approval message, the first decision, and expiry.

Who may decide is checked against the stored request and the current policy, never the
click's payload; the first decision wins by one conditional update in the store.
"""

from __future__ import annotations

from bot.core.access import Action, Subject
from bot.sending.from_records import already_decided, origin_of
from bot.sending.sends import Delivery
from bot.sending.services import Services
from bot.store import StoredRequest


class Approvals:
    """Asks approvers, records their decision (sending on approval) and expires the rest."""

    def __init__(self, services: Services, delivery: Delivery) -> None:
        self._services = services
        self._delivery = delivery

    async def ask(self, request: StoredRequest) -> None:
        """Post the approval request where approvers look, and tell the requester."""
        services, store = self._services, self._services.store
        channel = services.policy.approvals.channel or request.channel_id
        body = services.present.approval_text(services.describe(request), request.sender)
        ts = await services.reporter.post(
            channel, body, blocks=services.present.approval_blocks(request.id, body)
        )
        origin = origin_of(request)
        if ts is None:
            if await services.db(
                store.transition,
                request.id,
                "expired",
                from_states=["pending_approval"],
                reason="the approval request could not be posted",
            ):
                await services.reporter.tell_requester(
                    origin, services.present.unposted_approval_text(channel)
                )
            return
        await services.db(store.set_approval_message, request.id, channel, ts)
        if request.thread_ts is None:  # a page keeps answering in its incident thread
            await services.db(store.set_thread, request.id, channel, ts)
        await services.reporter.tell_requester(
            origin,
            f":hourglass: Your text needs an approver's OK; the request is in <#{channel}>.",
        )

    async def may_decide(self, request: StoredRequest, user: str, *, approve: bool) -> str | None:
        """Why ``user`` may not decide this request, or None. Checked against the store's
        record, the current policy and Slack user groups as they are now, never the
        payload."""
        action = Action.APPROVE if approve else Action.REJECT
        verdict = await self._services.may(user, action, Subject(requester=request.sender))
        return verdict.refusal()

    async def decide(
        self, request_id: str, user: str, *, approve: bool, reason: str | None = None
    ) -> str | None:
        """Approve or reject; the first decision wins. A message for the clicker, or None."""
        services, store = self._services, self._services.store
        request = await services.db(store.get_request, request_id)
        if request is None:
            return "this approval request is unknown to the bridge"
        refusal = await self.may_decide(request, user, approve=approve)
        if refusal:
            return refusal
        won = await services.db(
            store.transition,
            request_id,
            "approved" if approve else "rejected",
            from_states=["pending_approval"],
            decided_by=user,
            reason=reason,
        )
        if not won:
            return already_decided(await services.db(store.get_request, request_id))
        verdict = services.present.verdict_text(user, approve, reason, services.masked())
        await self._close(request, verdict)
        if approve:
            await services.reporter.tell_requester(
                origin_of(request), f"{verdict}. Sending your text now."
            )
            await self._delivery.deliver(request_id)
        else:
            await services.reporter.tell_requester(
                origin_of(request), f"{verdict}. Nothing was sent."
            )
        return None

    async def expire_overdue(self) -> None:
        """Expire approvals nobody decided in time (one process wins each) and say so."""
        services, store = self._services, self._services.store
        for request in await services.db(store.expired_approvals):
            if await services.db(
                store.transition, request.id, "expired", from_states=["pending_approval"]
            ):
                verdict = ":alarm_clock: Expired: nobody approved it in time"
                await self._close(request, verdict)
                await services.reporter.tell_requester(
                    origin_of(request), f"{verdict}. Nothing was sent."
                )

    async def _close(self, request: StoredRequest, verdict: str) -> None:
        """Replace the approval message's buttons with the verdict."""
        if request.approval_channel and request.approval_ts:
            body = self._services.present.approval_text(
                self._services.describe(request), request.sender
            )
            await self._services.reporter.update(
                request.approval_channel,
                request.approval_ts,
                f"{body}\n{verdict}",
                self._services.present.decided_blocks(body, verdict),
            )
