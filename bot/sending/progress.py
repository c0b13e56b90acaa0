"""How a send to many people shows itself while it runs: a thread reply edited live with the
counts, the pace and the time left, and a status line on the request message itself.

2Chat's per-minute limit makes a big page take minutes (500 people at 80 a minute: over six),
so the reply says how fast it goes and when it will be done, and the request message in the
channel shows at a glance whether it is still sending, done, or how many failed.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from bot.errors import TwoChatError
from bot.sending.ports import Reporter, RetryOffer
from bot.sending.roles import Db, PolicySource, Wording
from bot.store import StoredRequest

# The outcome text of the request's sends and the sends to offer a Retry for, when done.
Outcome = Callable[..., Awaitable[tuple[str, list[RetryOffer]]]]

SENDING = ":hourglass_flowing_sand: *Sending…*"
# A send expected to take at least this long says "Sending…" on its request message too; a
# quicker one would only spend the channel's edit slot that its progress reply needs.
LONG_SEND_SECONDS = 10.0


def pace_text(per_minute: int | None, from_policy: bool) -> str:
    """``paced at 80/min by your 2Chat plan`` (empty when 2Chat calls are not paced)."""
    if per_minute is None:
        return ""
    by = "the policy's limits" if from_policy else "your 2Chat plan"
    return f"paced at {per_minute}/min by {by}"


def time_left(per_minute: int | None, left: int) -> str:
    """How long ``left`` sends take at the pace: ``about 6 min left`` (empty: unknown)."""
    if per_minute is None or left == 0:
        return ""
    minutes = left / per_minute
    return "under a minute left" if minutes < 1 else f"about {math.ceil(minutes)} min left"


def status_line(total: int, failed: int, unknown: int) -> str:
    """The request message's state once its sends ended."""
    if failed or unknown:
        parts = [f"{failed} failed"] if failed else []
        parts += [f"{unknown} outcome unknown"] if unknown else []
        return f":warning: *Done: {', '.join(parts)}* of {total}"
    return f":white_check_mark: *Done: all {total} sent*"


class Tally:
    """Running counts of one run's results, for progress edits that cost O(1)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.queued = 0
        self.failed = 0
        self.unknown = 0

    @property
    def done(self) -> int:
        return self.queued + self.failed + self.unknown

    def add(self, result: str | BaseException) -> None:
        if isinstance(result, str):
            self.queued += 1
        elif isinstance(result, TwoChatError) and not result.outcome_unknown:
            self.failed += 1
        else:
            self.unknown += 1

    def text(self, per_minute: int | None = None, from_policy: bool = False) -> str:
        """``Sending… paced at 80/min by your 2Chat plan — 73 of 500 done, about 6 min
        left: 73 queued by 2Chat``."""
        parts = [f"{self.queued} queued by 2Chat"]
        parts += [f"{self.failed} failed"] if self.failed else []
        parts += [f"{self.unknown} outcome unknown"] if self.unknown else []
        pace = pace_text(per_minute, from_policy)
        eta = time_left(per_minute, self.total - self.done)
        head = f"Sending… {pace} —" if pace else "Sending…"
        done = f"{self.done} of {self.total} done" + (f", {eta}" if eta else "")
        return f":hourglass_flowing_sand: {head} {done}: {', '.join(parts)}"


class LiveReply:
    """One thread reply for a multi-recipient send, edited in place as results arrive, and
    the request message's status line.

    At most one edit a second per channel (Slack's chat.update limit; slack-sdk waits out a
    429's Retry-After). Progress edits show running counts kept here, so each costs the
    same for 5 recipients or 5,000; only the final edit reads every send back.
    """

    def __init__(
        self,
        db: Db,
        policy: PolicySource,
        words: Wording,
        reporter: Reporter,
        request: StoredRequest,
        thread_ts: str,
        total: int,
        *,
        per_minute: int | None,
        outcome: Outcome,
        own: bool,
    ) -> None:
        """``own``: the request message is the bridge's own (a page's thread is often
        someone else's message, which only its author may edit)."""
        self._db, self._store = db, db.store
        self._words = words
        self._reporter = reporter
        self._request = request
        self._thread_ts = thread_ts
        self._ts: str | None = None
        self._per_minute = per_minute
        self._from_policy = policy().limits.requests_per_minute is not None
        self._outcome = outcome
        self._own = own
        self._tally = Tally(total)

    async def start(self, existing: str | None = None) -> None:
        """Post the progress reply, or take over ``existing`` (a resumed request's); its ts
        is stored so whoever finishes the request edits this one. The request message says
        it is sending."""
        if existing is not None:
            self._ts = existing
            return
        count = len(self._request.recipients)
        pace = pace_text(self._per_minute, self._from_policy)
        eta = time_left(self._per_minute, self._tally.total)
        pace += f", {eta}" if pace and eta else ""
        self._ts = await self._reporter.post(
            self._request.channel_id,
            f":hourglass_flowing_sand: Sending to {count} recipients…"
            + (f" {pace}" if pace else ""),
            thread_ts=self._thread_ts,
        )
        if self._ts is not None:
            await self._db(self._store.set_progress_message, self._request.id, self._ts)
        if self._per_minute and count * 60 / self._per_minute >= LONG_SEND_SECONDS:
            await self._mark_request(SENDING)

    async def refresh(self, result: str | BaseException) -> None:
        """Count one result and edit the counts in, unless the channel's last edit was too
        recent: the next result (or ``finish``) brings this one's news too."""
        self._tally.add(result)
        channel = self._request.channel_id
        if self._ts is None or not self._reporter.edit_ready(channel):
            return
        async with self._reporter.edit_turn(channel):
            await self._reporter.update(
                channel, self._ts, self._tally.text(self._per_minute, self._from_policy)
            )

    async def finish(self, elapsed: float) -> bool:
        """The final edit, then the request message's final state; False when there is no
        reply to edit (then post one instead). The outcome goes first: edits in a channel
        wait a second for each other, and the thread's outcome is the news."""
        tally = self._tally
        edited = False
        if self._ts is not None:
            text, retry_offers = await self._outcome(elapsed=elapsed)
            async with self._reporter.edit_turn(self._request.channel_id):
                edited = await self._reporter.update(
                    self._request.channel_id,
                    self._ts,
                    text,
                    self._words.present.outcome_blocks(text, retry_offers),
                )
        await self._mark_request(status_line(tally.total, tally.failed, tally.unknown))
        return edited

    async def _mark_request(self, line: str) -> None:
        """The request message as posted, with its state on a last line."""
        if not self._own:
            return
        channel = self._request.channel_id
        text = f"{self._words.describe(self._request)}\n{line}"
        async with self._reporter.edit_turn(channel):
            await self._reporter.update(channel, self._thread_ts, text)
