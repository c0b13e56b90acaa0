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
