"""What the store records and hands back: request and send states, and the frozen rows.

These are plain values with no database in them, so the app and the tests can build and
compare them freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

RequestState = Literal[
    "pending_approval", "approved", "rejected", "expired", "queued", "sending", "completed"
]
SendState = Literal["queued", "sending", "sent", "failed", "unknown"]

REQUEST_STATES: frozenset[str] = frozenset(get_args(RequestState))
SEND_STATES: frozenset[str] = frozenset(get_args(SendState))

# The request lifecycle; rejected, expired and completed are final.
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    "pending_approval": frozenset({"approved", "rejected", "expired"}),
    "approved": frozenset({"sending"}),
    # A queued request expires only when it was recorded after its requester was told it
    # failed (the database answered too late): it must never be sent.
    "queued": frozenset({"sending", "expired"}),
    # A request recorded already "sending" expires for the same reason (see Recorded).
    "sending": frozenset({"completed", "expired"}),
    "rejected": frozenset(),
    "expired": frozenset(),
    "completed": frozenset(),
}


def utcnow() -> datetime:
    """The default clock: the current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewRecipient:
    """One destination of a request: an E.164 number and, when it came from a contact, its name."""

    number: str
    name: str | None = None


@dataclass(frozen=True)
class NewRequest:
    """What the app asks the store to record before anything is sent."""

    kind: str  # "sms" | "page"
    sender: str  # Slack user id of the requester
    channel_id: str
    from_name: str
    from_number: str
    recipients: tuple[NewRecipient, ...]
    text: str
    segments: int
    encoding: str
    approval_required: bool = False
    expires_at: datetime | None = None
    response_url: str | None = None
    thread_ts: str | None = None  # pages answer in the thread of the message that triggered them
    dedupe_key: str | None = None  # idempotency guard for Slack retries
    # The recipients as named (a JSON list): a send that runs later reads rosters again.
    targets: str | None = None


@dataclass(frozen=True)
class StoredRequest:
    """A request as recorded, with its recipients in the order they were given."""

    id: str
    kind: str
    sender: str
    channel_id: str
    thread_ts: str | None
    response_url: str | None
    from_name: str
    from_number: str
    text: str
    segments: int
    encoding: str
    state: RequestState
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    approval_channel: str | None
    approval_ts: str | None
    dedupe_key: str | None
    recipients: tuple[NewRecipient, ...]
    targets: str | None = None  # as NewRequest.targets


@dataclass(frozen=True)
class SendRecord:
    """One SMS to one recipient; ``sending`` means 2Chat may have been called."""

    id: int
    request_id: str
    number: str
    name: str | None
    state: SendState
    message_id: str | None
    error: str | None
    attempts: int
    claimed_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class Recorded:
    """What recording a request hands back, so its delivery needs no second read: the
    request, its sends, and which of its recipients have opted out. ``fresh``: this call
    inserted it (else it was found by its dedupe key); ``started``: it was recorded
    "sending" under the lease the caller named, and the caller must deliver it."""

    request: StoredRequest
    sends: tuple[SendRecord, ...]
    opted_out: frozenset[str]
    fresh: bool
    started: bool


@dataclass(frozen=True)
class RateLimits:
    """The policy's hourly ``limits``; ``None`` means no limit of that kind."""

    per_sender_per_hour: int | None
    per_recipient_per_hour: int | None


@dataclass(frozen=True)
class OptOut:
    """A number that replied STOP: nothing is sent to it until it replies START."""

    number: str
    since: datetime
    via: str


@dataclass(frozen=True)
class Acknowledgement:
    """A page recipient who replied an ack word; ``at`` is when their reply was sent."""

    request_id: str
    number: str
    at: datetime
    via: str | None


@dataclass(frozen=True)
class ReplyCursor:
    """How far the reply poller has read one 2Chat conversation (channel + contact).

    ``marker`` is the conversation's last-message state as last seen, so an unchanged
    conversation costs no messages call; ``last_message_ts`` is the newest inbound relayed.
    """

    channel_uuid: str
    contact: str
    marker: str
    last_message_uuid: str | None
    last_message_ts: int | None


@dataclass(frozen=True)
class InboundMessage:
    """An inbound SMS the bridge has handled (relayed, dropped, or acted on), once."""

    uuid: str
    channel_uuid: str
    contact: str
    sent_at: datetime | None
    request_id: str | None
    kind: str  # reply | ack | stop | start | unknown
    seen_at: datetime


@dataclass(frozen=True)
class PendingInbound:
    """An inbound SMS recorded and not yet acted on: everything the action needs, so a
    process that did not read it from 2Chat can finish it."""

    uuid: str
    channel_uuid: str
    contact: str
    from_number: str
    text: str
    name: str | None  # the name 2Chat has for the conversation
    kind: str  # stop | start | ack | reply, whether or not a request matched
    sent_at: datetime
    request_id: str | None
    tries: int = 0  # attempts to act on it that failed
    retry_at: datetime | None = None  # after a failure: not tried again before this
    acted: bool = False  # acted on already; only its post in Slack is still owed
    note: str | None = None  # the note that post carries (what acting on it said)
