"""The small roles the send path's parts are given, each for what a part uses: ``Db`` for
store calls, ``Permissions`` for who may do what, ``Wording`` for a message's words. The
composition root (``bot.app``) builds one of each and hands a part only those it uses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from bot.core.access import Action, Subject, Verdict, permission
from bot.core.directory import EMPTY_DIRECTORY, Directory, DirectorySource, no_directory
from bot.core.model import Policy
from bot.core.rosters import reads_slack
from bot.sending.from_records import plan_of
from bot.sending.ports import Presenter
from bot.sending.store_calls import store_calls
from bot.store import Store, StoredRequest

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

# The policy in force, read at each use so a reloaded policy applies to the next decision.
PolicySource = Callable[[], Policy]


class Db:
    """The store, reached from async code: its calls run on the store's own threads (one
    for SQLite, two for Postgres), queued there instead of contending for the store's
    locks and the GIL in many threads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._store_calls = store_calls(store)

    async def __call__(self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store call on the store's threads: the store is synchronous and must not
        block the event loop. The caller's context goes along (``answer_within``). Typed
        after ``method``, so every store call is checked."""
        return await self._store_calls.run(method, *args, **kwargs)

    def close(self) -> None:
        """Let the store's threads end once the calls queued on them are done."""
        self._store_calls.close()


async def read_rosters(
    directory: DirectorySource, policy: Policy, targets: Sequence[str], *, patient: bool
) -> Directory:
    """What resolving ``targets`` needs from Slack's ``directory``: nothing at all when
    their rosters are all kept in the file, so Slack being slow or down never delays a
    page to them (an auto-page, a ladder's tier)."""
    if not reads_slack(policy, targets):
        return EMPTY_DIRECTORY
    return await directory(policy, patient=patient)


class Permissions:
    """Who may do what, by the policy in force and Slack user groups as they are now."""

    def __init__(self, policy: PolicySource, directory: DirectorySource = no_directory) -> None:
        self._policy = policy
        # Slack user groups and profile phones (``bot.slack.directory``); a policy that
        # names no Slack people needs none.
        self._directory = directory

    async def may(self, actor: str, action: Action, subject: Subject | None = None) -> Verdict:
        """Whether ``actor`` may take ``action`` (``bot.core.access.permission``); a roster
        that could not be read is logged with why."""
        policy = self._policy()
        verdict = permission(policy, await self._directory(policy), actor, action, subject)
        if verdict.answer == "unknown":
            logger.warning(
                "cannot tell whether %s may %s: could not read %s", actor, action, verdict.why
            )
        return verdict


class Wording:
    """The presenter's words with the policy's choice of masked numbers: what a part needs
    to word a message, without the means to post one."""

    def __init__(self, presenter: Presenter, policy: PolicySource) -> None:
        self.present = presenter
        self._policy = policy

    def masked(self) -> bool:
        """Whether Slack messages show numbers masked (the policy's choice)."""
        return self._policy().defaults.mask_numbers

    def describe(self, request: StoredRequest) -> str:
        """The request as Slack shows it: who sends what to whom."""
        return self.present.request_text(plan_of(request), self.masked())
