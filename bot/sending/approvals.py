"""Approve-before-send: the approval message, the first decision, and expiry.

Who may decide is checked against the stored request and the current policy, never the
click's payload; the first decision wins by one conditional update in the store.
"""

from __future__ import annotations

from bot.core.access import Action, Subject
from bot.sending.from_records import already_decided, origin_of
from bot.sending.ports import Reporter
from bot.sending.roles import Db, Permissions, PolicySource, Wording
from bot.sending.sends import Delivery
from bot.store import StoredRequest

EXPIRED = ":alarm_clock: Expired: nobody approved it in time"


class Approvals:
    """Asks approvers, records their decision (sending on approval) and expires the rest."""

    def __init__(
        self,
        db: Db,
        policy: PolicySource,
        words: Wording,
        reporter: Reporter,
        permissions: Permissions,
        delivery: Delivery,
    ) -> None:
        self._db, self._store = db, db.store
        self._policy = policy
        self._words = words
        self._reporter = reporter
        self._permissions = permissions
        self._delivery = delivery

    async def ask(self, request: StoredRequest) -> None:
        """Post the approval request where approvers look, and tell the requester."""
        store = self._store
        channel = self._policy().approvals.channel or request.channel_id
        body = self._words.present.approval_text(self._words.describe(request), request.sender)
        ts = await self._reporter.post(
            channel, body, blocks=self._words.present.approval_blocks(request.id, body)
        )
        origin = origin_of(request)
        if ts is None:
            if await self._db(
                store.transition,
                request.id,
                "expired",
                from_states=["pending_approval"],
                reason="the approval request could not be posted",
            ):
                await self._reporter.tell_requester(
                    origin, self._words.present.unposted_approval_text(channel)
                )
            return
        await self._db(store.set_approval_message, request.id, channel, ts)
        await self._close_if_decided(request.id)
        if request.thread_ts is None:  # a page keeps answering in its incident thread
            await self._db(store.set_thread, request.id, channel, ts)
        await self._reporter.tell_requester(
            origin,
            f":hourglass: Your text needs an approver's OK; the request is in <#{channel}>.",
        )

    async def may_decide(self, request: StoredRequest, user: str, *, approve: bool) -> str | None:
        """Why ``user`` may not decide this request, or None. Checked against the store's
        record, the current policy and Slack user groups as they are now, never the
        payload."""
        action = Action.APPROVE if approve else Action.REJECT
        verdict = await self._permissions.may(user, action, Subject(requester=request.sender))
        return verdict.refusal()

    async def decide(
        self, request_id: str, user: str, *, approve: bool, reason: str | None = None
    ) -> str | None:
        """Approve or reject; the first decision wins. A message for the clicker, or None."""
        store = self._store
        request = await self._db(store.get_request, request_id)
        if request is None:
            return "this approval request is unknown to the bridge"
        refusal = await self.may_decide(request, user, approve=approve)
        if refusal:
            return refusal
        won = await self._db(
            store.transition,
            request_id,
            "approved" if approve else "rejected",
            from_states=["pending_approval"],
            decided_by=user,
            reason=reason,
        )
        if not won:
            return already_decided(await self._db(store.get_request, request_id))
        verdict = self._words.present.verdict_text(user, approve, reason, self._words.masked())
        # Read again: the approval message's ts is recorded only once its post returned.
        decided = await self._db(store.get_request, request_id)
        await self._close(decided or request, verdict)
        if approve:
            await self._reporter.tell_requester(
                origin_of(request), f"{verdict}. Sending your text now."
            )
            await self._delivery.deliver(request_id)
        else:
            await self._reporter.tell_requester(origin_of(request), f"{verdict}. Nothing was sent.")
        return None

    async def expire_overdue(self) -> None:
        """Expire approvals nobody decided in time (one process wins each) and say so."""
        store = self._store
        for request in await self._db(store.expired_approvals):
            if await self._db(
                store.transition, request.id, "expired", from_states=["pending_approval"]
            ):
                await self._close(request, EXPIRED)
                await self._reporter.tell_requester(
                    origin_of(request), f"{EXPIRED}. Nothing was sent."
                )

    async def _close_if_decided(self, request_id: str) -> None:
        """Close an approval message decided before its ts was recorded: a click that came
        while its post was on its way found no message to close. (Both may close it: the
        same edit twice, never none, as each reads after the other's write.)"""
        request = await self._db(self._store.get_request, request_id)
        if request is None or request.state == "pending_approval":
            return
        if request.decided_by is None:
            verdict = EXPIRED
        else:
            approve, reason = request.state != "rejected", request.decision_reason
            masked = self._words.masked()
            verdict = self._words.present.verdict_text(request.decided_by, approve, reason, masked)
        await self._close(request, verdict)

    async def _close(self, request: StoredRequest, verdict: str) -> None:
        """Replace the approval message's buttons with the verdict."""
        if request.approval_channel and request.approval_ts:
            body = self._words.present.approval_text(self._words.describe(request), request.sender)
            await self._reporter.update(
                request.approval_channel,
                request.approval_ts,
                f"{body}\n{verdict}",
                self._words.present.decided_blocks(body, verdict),
            )
