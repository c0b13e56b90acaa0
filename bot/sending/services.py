"""The store, the live policy, the reporter and its presenter, shared by every part of the send
path and by the reply poller."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from bot.core.access import Action, Subject, Verdict, permission
from bot.core.directory import DirectorySource, no_directory
from bot.core.model import Policy
from bot.sending.from_records import plan_of
from bot.sending.ports import Presenter, Reporter
from bot.sending.store_calls import store_calls
from bot.store import Store, StoredRequest

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class Services:
    """Store access for async code, the policy as it is now, and chat output."""

    def __init__(
        self,
        store: Store,
        policy_source: Callable[[], Policy],
        reporter: Reporter,
        presenter: Presenter,
        *,
        directory: DirectorySource = no_directory,
        outcome_listeners: Sequence[Callable[[str, str], None]] = (),
        ack_listeners: Sequence[Callable[[str], None]] = (),
    ) -> None:
        self.store = store
        # The store's own threads (one for SQLite, two for Postgres): calls queue for them
        # instead of contending for the store's locks and the GIL in many threads.
        self._store_calls = store_calls(store)
        self._policy = policy_source
        self.reporter = reporter
        self.present = presenter
        # Who hears each send's end as (result, reason), e.g. the metrics; lasts the process.
        self._outcome_listeners = tuple(outcome_listeners)
        # Who hears that an escalating page was acknowledged first, and how ("sms", …).
        self._ack_listeners = tuple(ack_listeners)
        # Slack user groups and profile phones for a decision; the app passes Slack's reader
        # (``bot.slack.directory``), and a policy that names no Slack people needs none.
        self.directory = directory

    async def may(self, actor: str, action: Action, subject: Subject | None = None) -> Verdict:
        """Whether ``actor`` may take ``action`` (``bot.core.access.permission``) with Slack
        user groups as they are now; a roster that could not be read is logged with why."""
        policy = self.policy
        verdict = permission(policy, await self.directory(policy), actor, action, subject)
        if verdict.answer == "unknown":
            logger.warning(
                "cannot tell whether %s may %s: could not read %s", actor, action, verdict.why
            )
        return verdict

    def ack_seen(self, via: str) -> None:
        """Tell the listeners a page was acknowledged (the first ack only)."""
        for listener in self._ack_listeners:
            listener(via)

    def outcome_seen(self, result: str, reason: str = "") -> None:
        """Tell the listeners how one send ended: "sent", "failed" or "unknown"."""
        for listener in self._outcome_listeners:
            listener(result, reason)

    @property
    def policy(self) -> Policy:
        """Read at each use, so a reloaded policy applies to the next decision."""
        return self._policy()

    async def db(self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store call on the store's threads: the store is synchronous and must not
        block the event loop. The caller's context goes along (``answer_within``). Typed
        after ``method``, so every store call is checked."""
        return await self._store_calls.run(method, *args, **kwargs)

    def close(self) -> None:
        """Let the store's threads end once the calls queued on them are done."""
        self._store_calls.close()

    def masked(self) -> bool:
        """Whether Slack messages show numbers masked (the policy's choice)."""
        return self.policy.defaults.mask_numbers

    def describe(self, request: StoredRequest) -> str:
        """The request as Slack shows it: who sends what to whom."""
        return self.present.request_text(plan_of(request), self.masked())
