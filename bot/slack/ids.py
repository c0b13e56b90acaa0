"""Every block, action, view and shortcut id the app uses, in one place.

Slack sends these back verbatim, so renaming one breaks buttons on messages already
posted; keep the values stable. ``StrEnum`` members are ``str``, so Bolt matches them as is.
"""

from enum import StrEnum


class ActionId(StrEnum):
    """``action_id`` of buttons and inputs: those with a listener, and inputs read back from a
    submitted form (``COMPOSE_PEOPLE``, ``REJECT_REASON``)."""

    APPROVE = "approval_approve"
    REJECT = "approval_reject"
    RETRY = "send_retry"
    COMPOSE_FROM = "from_number"
    COMPOSE_TO = "to_input"
    COMPOSE_TEXT = "message"
    COMPOSE_CLEANUP = "gsm7_cleanup"
    COMPOSE_PEOPLE = "to_people"  # people picked from Slack beside the typed names
    REJECT_REASON = "reason"
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


class BlockId(StrEnum):
    """``block_id`` of the blocks whose values or errors the app reads back, or that a test
    finds. A form shows an error under a block by its id."""

    APPROVAL = "approval"  # App Home adds "-<request id>": one per request in a view
    RETRY = "retry"
    COMPOSE_FROM = "from"
    COMPOSE_TO = "to"
    COMPOSE_PEOPLE = "to_people"
    COMPOSE_TEXT = "text"
    COMPOSE_CLEANUP = "cleanup"
    COMPOSE_PREVIEW = "preview"
    PAGE_TO = "page_to"
    PAGE_TEXT = "page_text"
    REJECT_REASON = "reason"
