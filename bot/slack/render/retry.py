"""Retry buttons on outcomes whose result is unknown: each carries the attempt it was
offered for, so it acts once however often it is clicked, and Slack asks to confirm first,
since the person may be texted twice."""

from __future__ import annotations

from bot.sending.ports import RetryOffer
from bot.slack.ids import ActionId, BlockId
from bot.slack.render.blocks import MAX_ACTIONS_ELEMENTS, Block, button, confirm_dialog, sections

RETRY_CONFIRM = confirm_dialog(
    "Text this person again?", "2Chat may already have this SMS: it may text them twice."
)


def retry_value(send_id: int, attempts: int) -> str:
    """A Retry button's value: the send and the attempt its outcome was shown for."""
    return f"{send_id}:{attempts}"


def parse_retry_value(value: str) -> tuple[int, int | None]:
    """(send id, attempt) from a Retry button; the attempt is None on a button posted
    before buttons carried it. ValueError when the value is neither."""
    send_id, _, attempts = value.partition(":")
    return int(send_id), int(attempts) if attempts else None


def outcome_blocks(text: str, retry_offers: list[RetryOffer]) -> list[Block] | None:
    """Outcome text, plus a Retry button per send whose outcome is unknown (the first 25:
    Slack allows no more in one actions block), each for the attempt shown."""
    if not retry_offers:
        return None
    buttons = [
        button("Retry", ActionId.RETRY, retry_value(*offer), confirm=RETRY_CONFIRM)
        for offer in retry_offers[:MAX_ACTIONS_ELEMENTS]
    ]
    return [*sections(text), {"type": "actions", "block_id": BlockId.RETRY, "elements": buttons}]
