"""Every action, view and shortcut id the app registers, in one place.

Slack sends these back verbatim, so renaming one breaks buttons on messages already
posted; keep the values stable. ``StrEnum`` members are ``str``, so Bolt matches them as is.
"""

from enum import StrEnum


class ActionId(StrEnum):
    """``action_id`` of buttons and inputs that have a listener."""

    APPROVE = "approval_approve"
    REJECT = "approval_reject"
    RETRY = "send_retry"
    COMPOSE_FROM = "from_number"
    COMPOSE_TO = "to_input"
    COMPOSE_TEXT = "message"
    COMPOSE_CLEANUP = "gsm7_cleanup"
    PAGE_TO = "to"
    PAGE_TEXT = "text"
    LADDER_ACK = "ladder_ack"
    LADDER_ESCALATE = "ladder_escalate"
    LADDER_STOP = "ladder_stop"


class CallbackId(StrEnum):
    """``callback_id`` of modals and shortcuts."""

    COMPOSE = "sms_compose"
    REJECT_REASON = "approval_reject_reason"
    PAGE_FORM = "page_oncall_form"
    PAGE_SHORTCUT = "page_oncall"


# What a Retry button is offered for: (send id, the attempts made when its outcome was shown).
RetryOffer = tuple[int, int]


def retry_value(send_id: int, attempts: int) -> str:
    """A Retry button's value: the send and the attempt its outcome was shown for, so the
    button acts once for that attempt however often it is clicked."""
    return f"{send_id}:{attempts}"


def parse_retry_value(value: str) -> tuple[int, int | None]:
    """(send id, attempt) from a Retry button; the attempt is None on a button posted
    before buttons carried it. ValueError when the value is neither."""
    send_id, _, attempts = value.partition(":")
    return int(send_id), int(attempts) if attempts else None
