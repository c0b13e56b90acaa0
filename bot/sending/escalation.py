"""Escalation ladders at run time: a page in a channel with an ``escalation`` texts its
tiers in turn until someone acks, and the thread's pager board shows it all.

The timers live in the store (``escalations.next_tier_at``), so every process's sweeper
fires due tiers and a restart loses none; each move is one conditional update that also
records the tier's request, so no tier is texted twice. A tier's request is then delivered
like any other, with the send path's claims, pacing, retries and crash recovery.

The first ack (an SMS reply code, a plain ack word from someone with one open page, the
board's Ack button or a ✅ on the board) stops the ladder and texts everyone already texted
that it is handled; later acks are recorded and shown, never broadcast again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from bot.core.access import Action, Subject, Verdict
from bot.core.directory import DirectorySource, no_directory
from bot.core.escalation import (
    DEFAULT_ACKED_SMS,
    Escalation,
    acked_text,
    code_of,
    code_suffix,
    is_ladder_request,
    reply_code,
    request_key,
    rung_label,
)
from bot.core.model import reply_keyword
from bot.core.policy import too_long_message
from bot.core.rosters import resolve_all
from bot.core.segments import analyze
from bot.errors import BridgeError, RosterUnread, StoreError
from bot.sending.ports import Board, Reporter
from bot.sending.roles import Db, Permissions, PolicySource, Wording, read_rosters
from bot.sending.sends import Delivery
from bot.store import NewRecipient, NewRequest, StoredRequest
from bot.store.escalations import Climb, EscalationRecord
from bot.tasks import TaskRunner

logger = logging.getLogger(__name__)

Via = Literal["sms", "button", "reaction"]
Command = Literal["escalate", "stop"]
# How long after a page its ladder may still be started late (``Ladders.start_missed``).
MISSED_LADDER_WINDOW = timedelta(hours=1)


class Ladders:
    """Starts, climbs, acks and stops escalating pages; keeps their boards current."""

    def __init__(
        self,
        db: Db,
        policy: PolicySource,
        words: Wording,
        reporter: Reporter,
        permissions: Permissions,
        delivery: Delivery,
        runner: TaskRunner,
        *,
        directory: DirectorySource = no_directory,
        on_ack: Callable[[str], None] = lambda via: None,
    ) -> None:
        """``runner`` fires due tiers as tasks a shutdown lets finish; ``directory`` reads
        Slack rosters for a tier; ``on_ack`` hears how a page was acknowledged first ("sms",
        "button", "reaction"), e.g. the metrics."""
        self._db, self._store = db, db.store
        self._policy = policy
        self._words = words
        self._reporter = reporter
        self._permissions = permissions
        self._delivery = delivery
        self._directory = directory
        self._on_ack = on_ack
        self._runner = runner
        self._climbing: set[str] = set()  # ladders whose due tier this process is firing

    def ladder(self, name: str) -> Escalation | None:
        return self._policy().escalations.get(name)

    def _ladder_of(self, channel_id: str) -> tuple[str, Escalation] | None:
        rule = self._policy().channels.get(channel_id)
        if rule is None or rule.escalation is None:
            return None
        ladder = self.ladder(rule.escalation)
        return (rule.escalation, ladder) if ladder else None

    # ------------------------------------------------------------------ starting
    async def prepare(self, new: NewRequest) -> NewRequest | str:
        """A page about to be recorded in a channel with a ladder gets its reply code; an
        approval-bound page does not escalate (nobody may text before it is approved). A
        text the code would push over ``max_segments`` is refused (why), never cut: what
        someone typed goes whole or not at all (an alert was cut to leave it room)."""
        if new.kind != "page" or new.approval_required or not self._ladder_of(new.channel_id):
            return new
        code = await self._db(self._store.reserve_code)
        max_segments = self._policy().defaults.max_segments
        coded = _with_text(new, new.text + code_suffix(code))
        if coded.segments > max_segments:
            too_long = too_long_message(analyze(coded.text), max_segments)
            return f"{too_long} once the page's reply code ({code_suffix(code).strip()}) is added"
        return coded

    async def release(self, new: NewRequest) -> None:
        """A prepared page was refused (rate limit, everyone opted out) or was a repeat: its
        reply code goes back, so refusals never use up the codes."""
        code = code_of(new.text)
        if code is not None and new.kind == "page" and self._ladder_of(new.channel_id):
            await self._db(self._store.release_code, code)

    async def escalating(
        self, request: StoredRequest, deliver: Callable[[], Awaitable[object]]
    ) -> None:
        """Start the ladder of a page that has one (a no-op for other requests, and for a
        ladder started already), deliver it, then show the board with whom tier 1 reached.
        A fresh page and one taken over from a process that died before its ladder started
        both come this way, so no page that should escalate is sent without its ladder."""
        opened = False
        try:
            opened = await self.begin(request)
        except StoreError as exc:  # the page goes out all the same; see ``start_missed``
            logger.warning("page %s: ladder not started yet, database failed: %s", request.id, exc)
        finally:
            await deliver()
        if opened:
            await self.refresh(request.id)

    async def begin(self, request: StoredRequest) -> bool:
        """Start the ladder of a recorded page that carries a reply code, and post its
        board; True if this call started it (the board is edited again once tier 1 is sent)."""
        found = self._ladder_of(request.channel_id)
        code = code_of(request.text)
        if request.kind != "page" or found is None or code is None:
            return False
        if is_ladder_request(request.dedupe_key):
            return False  # a tier of a ladder (taken over after a crash), not a new page
        name, ladder = found
        # Counted from the page, so a ladder started late (``start_missed``) is not later.
        due = request.created_at + ladder.wait_after(0)
        if not await self._db(self._store.open_escalation, request.id, name, code, due):
            return False
        await self.refresh(request.id)
        return True

    async def start_missed(self, before: datetime) -> None:
        """Start the ladder of each page that went out without one (the sweeper's step):
        the database failed as its ladder was to start, after the page was recorded, and
        the page is sent regardless. Its next tier is due as if the ladder had started
        with the page. Pages last changed before ``before`` only: one still being started
        is its own process's, and within the hour: later a ladder is no use."""
        db, store = self._db, self._store
        since = store.now() - MISSED_LADDER_WINDOW
        for request in await db(store.pages_without_ladder, before, since):
            if await self.begin(request):
                logger.warning("page %s: its ladder started late (the database failed)", request.id)

    # ------------------------------------------------------------------ climbing
    async def fire_due(self) -> None:
        """Start the next tier of every ladder whose wait ran out (the sweeper's step), each
        on its own: a tier waiting for Slack's rosters holds up no other ladder and none of
        the sweeper's other steps. A ladder already climbing in this process is left to it."""
        for escalation in await self._db(self._store.due_escalations):
            if escalation.id not in self._climbing:
                self._climbing.add(escalation.id)
                self._runner.spawn(self._fire(escalation), name=f"tier-{escalation.id}")

    async def _fire(self, escalation: EscalationRecord) -> None:
        try:
            await self.climb(escalation)
        except BridgeError as exc:
            logger.warning("escalation %s: next tier not sent yet: %s", escalation.id, exc)
        finally:
            self._climbing.discard(escalation.id)

    async def climb(self, escalation: EscalationRecord, actor: str | None = None) -> bool:
        """Move the ladder one rung (texting it); True when this call moved it."""
        db, store = self._db, self._store
        page = await db(store.get_request, escalation.id)
        ladder = self.ladder(escalation.name)
        step = ladder.step_after(escalation.tier, escalation.round) if ladder else None
        if ladder is None:
            logger.warning("escalation %r is no longer in the policy", escalation.name)
        send, missed, next_at = None, "", None
        if step is not None and ladder is not None and page is not None:
            # Fired when due (not by a person): it may wait for Slack's rosters (see below).
            due = escalation.next_tier_at if actor is None else None
            send, missed = await self._rung_request(page, ladder, *step, due)
            next_at = store.now() + ladder.wait_after(step[0])
        request_id = await db(store.climb, escalation, Climb(step, send, next_at, actor))
        if request_id is None:
            return False
        if request_id:
            await self._delivery.deliver(request_id)
        if missed and page is not None:  # the roster members this rung could not text
            await self._reporter.post(page.channel_id, missed, thread_ts=page.thread_ts)
        await self.refresh(escalation.id)
        return True

    async def _rung_request(
        self,
        page: StoredRequest,
        ladder: Escalation,
        tier: int,
        round_: int,
        due: datetime | None,
    ) -> tuple[NewRequest | None, str]:
        """The page's text to a rung's people, resolved like every other roster (Slack user
        groups as they are now), or None when none of them can be texted; and what to say
        in the page's thread: who on its rosters it cannot text (no number, or a profile
        Slack did not give), or why it texts nobody (a user group Slack did not give).

        A rung ``due`` since then that texts nobody only because Slack did not give its
        rosters raises RosterUnread instead (the sweeper tries it again), for as long as
        the ladder waits after it: a Slack hiccup does not pass a rung over, nor an outage
        hold the ladder for ever. Rosters kept in the file do not ask Slack at all."""
        policy = self._policy()
        rosters = ladder.tiers[tier].page
        directory = await read_rosters(self._directory, policy, rosters, patient=True)
        try:
            found = resolve_all(policy, rosters, directory)
        except BridgeError as exc:  # nobody on its rosters can be texted now, and why
            holding = due is not None and self._store.now() - due < ladder.wait_after(tier)
            if holding and isinstance(exc, RosterUnread):
                raise
            logger.warning("escalation tier %d: %s", tier + 1, exc)
            present = self._words.present
            refusal = present.refusal_text(present.describe_error(exc), self._words.masked())
            return None, f"*{rung_label(tier, round_)}:* {refusal}"
        missed = self._words.present.unreachable_text(
            found.unreachable, found.unread, found.skipped, self._words.masked()
        )
        recipients = tuple(NewRecipient(r.number, r.name) for r in found.recipients)
        rung = _like(page, request_key(page.id, f"r{round_}t{tier}"))
        return replace(rung, recipients=recipients), missed

    # ------------------------------------------------------------------ acks and commands
    async def ack(
        self, escalation_id: str, actor: str, via: Via, label: str, number: str | None = None
    ) -> bool:
        """The first ack stops the ladder and texts everyone texted (but the acker) once;
        True for it. A later ack is recorded as late and changes nothing else."""
        db, store = self._db, self._store
        escalation = await db(store.get_escalation, escalation_id)
        page = await db(store.get_request, escalation_id)
        if escalation is None or page is None:
            return False
        ladder = self.ladder(escalation.name)
        template = ladder.acked_sms if ladder else DEFAULT_ACKED_SMS
        text = acked_text(template, label, store.now()) if template else ""

        def acked_sms(recipients: list[NewRecipient]) -> NewRequest | None:
            if not text:
                return None
            base = _with_text(_like(page, request_key(page.id, "acked")), text)
            return replace(base, kind="sms", recipients=tuple(recipients))

        won, request_id = await db(
            store.ack_escalation, escalation_id, actor, via, acked_sms, number
        )
        if won:
            self._on_ack(via)
        if request_id:
            await self._delivery.deliver(request_id)
        await self.refresh(escalation_id)
        return won

    async def command(self, escalation_id: str, user: str, what: Command) -> str | None:
        """Escalate now or stop paging: the requester and approvers only. Why not, or None."""
        db, store = self._db, self._store
        escalation = await db(store.get_escalation, escalation_id)
        page = await db(store.get_request, escalation_id)
        if escalation is None or page is None:
            return "this page is unknown to the bridge"
        action = Action.STOP if what == "stop" else Action.ESCALATE
        verdict = await self._permissions.may(user, action, Subject(requester=page.sender))
        if not verdict.allowed:
            return verdict.refusal()
        if escalation.state != "open":
            return f"this page is already {escalation.state}"
        ladder = self.ladder(escalation.name)
        if what == "escalate" and (ladder is None or not ladder.step_after(*_rung(escalation))):
            return "this page is on its last tier: nobody is left to text"
        if what == "stop":
            done = await db(store.stop_escalation, escalation_id, user)
            if done:
                await self.refresh(escalation_id)
        else:
            done = await self.climb(escalation, actor=user)
        return None if done else "someone else moved this page at the same moment; see the board"

    async def may_ack(self, escalation_id: str, actor: str, action: Action) -> Verdict:
        """Whether ``actor`` (a Slack user, or the number that replied) may ack this page:
        ``bot.core.access`` says, knowing the page's requester and whom it texted."""
        db, store = self._db, self._store
        page = await db(store.get_request, escalation_id)
        texted = frozenset(t.number for t in await db(store.texted_by, escalation_id))
        subject = Subject(requester=page.sender if page else None, texted=texted)
        return await self._permissions.may(actor, action, subject)

    async def on_reply(self, contact: str, text: str) -> tuple[str | None, bool]:
        """An SMS reply that acks a ladder: its code, or an ack word from someone with one
        open page. A note for the reply posted in Slack (None when it acks no ladder), and
        whether it was an ack word that could not say which page: then nothing is acked, and
        the replier is asked by SMS for the code."""
        db, store = self._db, self._store
        keyword = reply_keyword(text)
        ack_words = self._policy().replies.ack_words
        code = reply_code(keyword, ack_words)
        label = self._label(contact)
        if code is not None:
            found = await db(store.escalations_with_code, code, contact)
        elif keyword in ack_words:
            found = await db(store.open_escalations_to, contact)
            if len(found) > 1:
                codes = ", ".join(e.code for e in found)
                await self._ask_for_code(contact, found)
                note = f":grey_question: {label} has {len(found)} open pages; asked by SMS to "
                return f"{note}reply a code ({codes}). Nothing was acked.", True
        else:
            return None, False
        if not found:
            return None, False
        escalation = found[0]
        action = Action.ACK_CODE if code is not None else Action.ACK_WORD
        if not (await self.may_ack(escalation.id, contact, action)).allowed:
            return None, False
        if await self.ack(escalation.id, contact, "sms", label, contact):
            return (
                f":white_check_mark: {label} acked page {escalation.code}: paging stopped.",
                False,
            )
        return (
            f":information_source: {label} acked page {escalation.code} late; it was handled.",
            False,
        )

    async def _ask_for_code(self, contact: str, open_pages: list[EscalationRecord]) -> None:
        """Text someone who answered several open pages with a bare ack word which codes
        to reply, once per those pages (the newest page's thread shows it went)."""
        db, store = self._db, self._store
        newest = await db(store.get_request, open_pages[0].id)
        if newest is None:
            return
        codes = " or ".join(e.code for e in open_pages)
        ask = f"You have {len(open_pages)} open pages. Reply {codes} to ack the one you take."
        pages = "-".join(sorted(e.id[:8] for e in open_pages))
        base = _with_text(_like(newest, request_key(newest.id, f"ask:{contact}:{pages}")), ask)
        recorded = await db(
            store.record_request,
            replace(base, kind="sms", recipients=(NewRecipient(contact, None),)),
            opt_outs=False,
        )
        if recorded is not None:
            await self._delivery.deliver(recorded.request.id)

    async def pause(self, seconds: float) -> None:
        """The reply poller's wait between polls, cut short to ``replies.page_poll_interval``
        steps while an escalating page awaits its ack: its reply must stop the ladder soon,
        and the faster polls cost 2Chat credits only while such a page is open."""
        fast = self._policy().replies.page_poll_interval
        if fast is None:
            await asyncio.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(fast.total_seconds(), left))
            if await self._db(self._store.any_open_escalation):
                return

    # ------------------------------------------------------------------ the board
    async def refresh(self, escalation_id: str) -> None:
        """Post the ladder's board, or edit it at Slack's pace for edits in its channel."""
        escalation = await self._db(self._store.get_escalation, escalation_id)
        if escalation is None or escalation.thread_ts is None:
            return
        if escalation.board_ts is None:
            await self._show(escalation_id)  # a new post: only edits need Slack's pace
            return
        async with self._reporter.edit_turn(escalation.channel_id):
            await self._show(escalation_id)

    async def _show(self, escalation_id: str) -> None:
        db, store, reporter = self._db, self._store, self._reporter
        escalation = await db(store.get_escalation, escalation_id)  # fresh after the wait
        if escalation is None or escalation.thread_ts is None:
            return
        board = Board(
            escalation,
            self.ladder(escalation.name),
            tuple(await db(store.escalation_steps, escalation_id)),
            tuple(await db(store.texted_by, escalation_id)),
            self._who,
            self._words.masked(),
        )
        present = self._words.present
        text, blocks = present.board_text(board), present.board_blocks(board)
        if escalation.board_ts is not None:
            await reporter.update(escalation.channel_id, escalation.board_ts, text, blocks)
            return
        if not await db(store.claim_key, f"board:{escalation_id}", timedelta(minutes=1)):
            return  # another process is posting it
        ts = await reporter.post(
            escalation.channel_id, text, blocks=blocks, thread_ts=escalation.thread_ts
        )
        if ts is not None:
            await db(store.set_board, escalation_id, ts)

    def _who(self, actor: str) -> str:
        """A Slack user as a mention, a number as its contact name (or shown as policy says)."""
        if actor.startswith("+"):
            return self._label(actor)
        return f"<@{actor}>"

    def _label(self, number: str) -> str:
        name = self._policy().contact_name(number)
        return name or self._words.present.show_number(number, self._words.masked())


def _rung(escalation: EscalationRecord) -> tuple[int, int]:
    return escalation.tier, escalation.round


def _with_text(new: NewRequest, text: str) -> NewRequest:
    """``new`` with another text, its segments counted again."""
    info = analyze(text)
    return replace(new, text=text, segments=info.segments, encoding=info.encoding)


def _like(page: StoredRequest, dedupe_key: str) -> NewRequest:
    """A request from the page's sender, number and thread, with the page's text."""
    return NewRequest(
        kind="page",
        sender=page.sender,
        channel_id=page.channel_id,
        from_name=page.from_name,
        from_number=page.from_number,
        recipients=tuple(page.recipients),
        text=page.text,
        segments=page.segments,
        encoding=page.encoding,
        thread_ts=page.thread_ts,
        dedupe_key=dedupe_key,
    )
