"""The send path's words and blocks as Slack shows them (``bot.sending.ports.Presenter``).

The send path does not import Slack; the composition root hands it this presenter, which
is the rendering functions of this package's modules under one name.
"""

from __future__ import annotations

from bot.slack.render import (
    approvals,
    board,
    escaping,
    outcomes,
    refusals,
    replies,
    retry,
    status,
)


class SlackPresenter:
    """Each method is the ``bot.slack.render`` function of the same name, unchanged."""

    request_text = staticmethod(outcomes.request_text)
    refusal_text = staticmethod(refusals.refusal_text)
    opted_out_reason = staticmethod(refusals.opted_out_reason)
    describe_error = staticmethod(refusals.describe_error)
    show_number = staticmethod(escaping.show_number)
    unreachable_text = staticmethod(refusals.unreachable_text)
    outcome_text = staticmethod(outcomes.outcome_text)
    outcome_blocks = staticmethod(retry.outcome_blocks)
    approval_text = staticmethod(approvals.approval_text)
    approval_blocks = staticmethod(approvals.approval_blocks)
    unposted_approval_text = staticmethod(refusals.unposted_approval_text)
    verdict_text = staticmethod(approvals.verdict_text)
    decided_blocks = staticmethod(approvals.decided_blocks)
    board_text = staticmethod(board.board_text)
    board_blocks = staticmethod(board.board_blocks)
    reply_text = staticmethod(replies.reply_text)
    unknown_reply_text = staticmethod(replies.unknown_reply_text)
    ack_summary_text = staticmethod(replies.ack_summary_text)
    status_text = staticmethod(status.status_text)


SLACK_PRESENTER = SlackPresenter()
