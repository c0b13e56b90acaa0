"""What the send path needs from the chat it reports to, owned by the send path.

``sending`` posts outcomes, approval requests, pager boards and replies, but it does not
know Slack: it talks to a ``Reporter`` (posting, editing, private fallbacks, the pace of
edits) and a ``Presenter`` (the words and blocks) that the composition root passes in. The
Slack implementations live in ``bot.slack`` (``SlackReporter``, ``SLACK_PRESENTER``), so
the package dependency points one way: Slack knows the send path, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.escalation import Escalation
from bot.core.model import Recipient
from bot.core.policy import SendPlan
from bot.store import InboundMessage, SendRecord, StoredRequest
from bot.store.escalations import EscalationRecord, EscalationStep, Texted

Blocks = list[dict[str, Any]]
# What a Retry button is offered for: (send id, the attempts made when its outcome was shown).
RetryOffer = tuple[int, int]


class ReplayClaim(Protocol):
    """The signature of the signed chat request being served: the first request recorded
    for it claims it (key, how long), so a replay recorded anywhere records nothing."""

    def take(self) -> tuple[str, timedelta] | None: ...


@dataclass(frozen=True)
class Origin:
    """Where a request came from, and how to reach its requester privately."""

    channel_id: str
    user_id: str
    response_url: str | None = None
    # Set when results belong in an existing thread (a page answering its trigger message).
    thread_ts: str | None = None
    # Set when a delivery may arrive twice (Slack retries): the same key is one request.
    dedupe_key: str | None = None
    kind: str = "sms"
    # Set for a request served from a signed HTTP delivery: recorded with the request.
    replay: ReplayClaim | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Posted:
    """What a post got: the message's ts, or why not: ``passing`` when the chat was down or
    busy (worth trying again later), not when it refused for good."""

    ts: str | None
    passing: bool


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient: a 2Chat message id, or the error."""

    recipient: Recipient
    message_id: str | None = None
    error: str | None = None
    pending: bool = False

    @property
    def ok(self) -> bool:
        return self.message_id is not None


@dataclass(frozen=True)
class Board:
    """What the pager board shows; ``who`` names an actor (a Slack user or a phone number),
    and ``masked`` is the policy's ``mask_numbers`` for numbers the ladder's tiers name."""

    escalation: EscalationRecord
    ladder: Escalation | None
    steps: tuple[EscalationStep, ...]
    texted: tuple[Texted, ...]
    who: Callable[[str], str]
    masked: bool = False


@dataclass(frozen=True)
class StatusFound:
    """What ``/sms status`` found for one message id: the SMS the bridge sent (``send``,
    with when its recipient acked) or read (``inbound``, from ``sender``), its request,
    and 2Chat's view of it (or why there is none)."""

    send: SendRecord | None
    inbound: InboundMessage | None
    sender: Recipient | None
    request: StoredRequest | None
    acknowledged_at: datetime | None
    remote: Mapping[str, Any] | None
    remote_error: str | None
    masked: bool


class Reporter(Protocol):
    """Posting to the chat: messages, edits at the chat's pace, and private fallbacks that
    make sure a requester always hears an outcome."""

    async def post(
        self, channel: str, text: str, *, blocks: Blocks | None = None, thread_ts: str | None = None
    ) -> str | None: ...

    async def try_post(
        self,
        channel: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        request_id: str | None = None,
    ) -> Posted: ...

    async def find_request_message(self, channel: str, request_id: str) -> str | None: ...

    async def update(
        self, channel: str, ts: str, text: str, blocks: Blocks | None = None
    ) -> bool: ...

    async def tell_requester(self, origin: Origin, text: str) -> bool:
        """Reach the requester privately; False when no route took the message."""
        ...

    def edit_ready(self, channel: str) -> bool:
        """Whether an edit in ``channel`` could go at once (for edits that may be skipped)."""
        ...

    def edit_turn(self, channel: str) -> AbstractAsyncContextManager[None]:
        """Wait for the channel's next edit slot; the edit is made inside the block."""
        ...


class Presenter(Protocol):
    """The words and blocks the send path posts; every text from outside is escaped by the
    implementation. Read each method as the function of the same name in ``bot.slack``."""

    def request_text(self, plan: SendPlan, masked: bool) -> str: ...
    def refusal_text(self, reason: str, masked: bool = False) -> str: ...
    def opted_out_reason(self, recipients: Iterable[Recipient]) -> str: ...
    def describe_error(self, exc: BaseException) -> str: ...
    def show_number(self, number: str, masked: bool) -> str: ...
    def unreachable_text(
        self,
        mentions: Sequence[str],
        unread: Sequence[str] = (),
        skipped: Sequence[str] = (),
        masked: bool = False,
    ) -> str: ...
    def outcome_text(
        self,
        outcomes: Sequence[Outcome],
        masked: bool,
        elapsed: float | None = None,
        request_id: str | None = None,
    ) -> str: ...
    def outcome_blocks(self, text: str, retry_offers: list[RetryOffer]) -> Blocks | None: ...
    def approval_text(self, plan_text: str, requester: str) -> str: ...
    def approval_blocks(self, request_id: str, body: str) -> Blocks: ...
    def unposted_approval_text(self, channel: str) -> str: ...
    def verdict_text(self, user: str, approve: bool, reason: str | None, masked: bool) -> str: ...
    def decided_blocks(self, body: str, verdict: str) -> Blocks: ...
    def board_text(self, board: Board) -> str: ...
    def board_blocks(self, board: Board) -> Blocks: ...
    def reply_text(
        self, sender: Recipient, text: str, masked: bool, note: str | None = None
    ) -> str: ...
    def unknown_reply_text(
        self, sender: Recipient, from_label: str, text: str, masked: bool
    ) -> str: ...
    def ack_summary_text(
        self, recipients: Sequence[Recipient], acks: Mapping[str, datetime], masked: bool
    ) -> str: ...
    def status_text(self, found: StatusFound) -> str: ...
