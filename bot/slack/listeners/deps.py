"""What every Slack listener module receives: the dependencies and the shared answers.

Every ``bot.slack`` surface imports this module and it imports none of them, which keeps
the listener modules free of import cycles.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.core.commands import NO_NAMES, unnamed_users
from bot.core.directory import Directory, DirectorySource
from bot.core.model import Policy
from bot.core.policy import Allow, NeedsApproval
from bot.errors import StoreError
from bot.sending.ports import Origin
from bot.sending.queries import Queries
from bot.sending.workflow import Workflow
from bot.slack.render.refusals import refusal_text, unreachable_text
from bot.slack.reporter import SlackReporter
from bot.slack.transport.replays import serving_claim
from bot.tasks import TaskRunner

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "the bridge's database is unavailable right now; try again in a minute"


async def no_names(user_ids: Iterable[str]) -> Mapping[str, str]:
    """Names for nobody: mentions without a label read "@someone" (tests, no Slack)."""
    return NO_NAMES


@dataclass
class Bridge:
    """What the listeners use, built by ``bot.app``: the send path's entry points
    (``workflow``) and reads (``queries``), Slack output, the task runner, and Slack's
    rosters and names. Listeners call these; none reaches the store."""

    policy_source: Callable[[], Policy]
    workflow: Workflow
    queries: Queries
    reporter: SlackReporter
    runner: TaskRunner
    # Slack user groups and profile phones for a policy (``SlackDirectory.snapshot``).
    read_directory: DirectorySource
    # Display names by user id, looked up in Slack (``SlackNames.names``).
    user_names: Callable[[Iterable[str]], Awaitable[Mapping[str, str]]] = no_names
    # How long a page's event may go unrenewed before a sweeper takes its page over.
    page_stale_after: timedelta = timedelta(seconds=15)

    @property
    def policy(self) -> Policy:
        return self.policy_source()

    async def directory(self, *, patient: bool = False) -> Directory:
        """Slack user groups and profile phones for the current policy, looked up before a
        decision so that ``decide`` stays pure; ``patient`` when no Slack request waits."""
        return await self.read_directory(self.policy, patient=patient)

    async def names_in(self, value: object) -> Mapping[str, str]:
        """The names of the users mentioned without one in ``value`` (command text or a
        whole message), so an SMS reads "@Dana" where Slack shows Dana's name."""
        wanted = unnamed_users(value)
        return await self.user_names(wanted) if wanted else NO_NAMES

    async def submit(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        """Take an accepted request from any entry point; a refusal text, or None if taken.

        The send itself runs after the caller has answered Slack. A database outage is a
        refusal like any other: nothing was recorded, so nothing will be sent.
        """
        try:
            return await self.accept(decision, origin)
        except StoreError as exc:
            logger.warning("request refused, database unavailable: %s", exc)
            return refusal_text(DATABASE_UNAVAILABLE)

    async def accept(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        """``submit``, raising StoreError during a database outage (for a caller that can
        wait for the database rather than refuse). A signed delivery's replay claim goes
        along on the origin, recorded with the request."""
        if origin.replay is None:
            origin = replace(origin, replay=serving_claim())
        refusal = await self.workflow.submit(decision, origin)
        plan = decision.plan
        if refusal is None and (plan.unreachable or plan.unread or plan.skipped):
            self.runner.spawn(self._say_unreachable(decision, origin), name="unreachable")
        return refusal

    async def _say_unreachable(self, decision: Allow | NeedsApproval, origin: Origin) -> None:
        """Roster members with no number are not texted; say who, where the outcome goes
        (a page's thread, else the requester), so nobody assumes they were reached."""
        plan = decision.plan
        masked = self.policy.defaults.mask_numbers
        text = unreachable_text(plan.unreachable, plan.unread, plan.skipped, masked)
        if origin.thread_ts is not None:
            await self.reporter.post(origin.channel_id, text, thread_ts=origin.thread_ts)
        else:
            await self.reporter.tell_requester(origin, text)

    async def tell_clicker(self, channel: str | None, user: str, text: str) -> None:
        """Privately: an ephemeral in the channel, or a DM for clicks in the App Home tab."""
        if channel is None:
            await self.reporter.post(user, text)
        else:
            await self.reporter.whisper(channel, user, text)
