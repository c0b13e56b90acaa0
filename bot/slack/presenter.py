"""The send path's words and blocks as Slack shows them (``bot.sending.ports.Presenter``).

The send path does not import Slack; the composition root hands it this presenter, which
is the rendering functions of ``render``, ``retry`` and ``board_render`` under one name.
"""

from __future__ import annotations

from bot.slack import board_render, render, retry


class SlackPresenter:
    """Each method is the ``bot.slack`` function of the same name, unchanged."""

    request_text = staticmethod(render.request_text)
    refusal_text = staticmethod(render.refusal_text)
    opted_out_reason = staticmethod(render.opted_out_reason)
    describe_error = staticmethod(render.describe_error)
    show_number = staticmethod(render.show_number)
    unreachable_text = staticmethod(render.unreachable_text)
    outcome_text = staticmethod(render.outcome_text)
    outcome_blocks = staticmethod(retry.outcome_blocks)
    approval_text = staticmethod(render.approval_text)
    approval_blocks = staticmethod(render.approval_blocks)
    unposted_approval_text = staticmethod(render.unposted_approval_text)
    verdict_text = staticmethod(render.verdict_text)
    decided_blocks = staticmethod(render.decided_blocks)
    board_text = staticmethod(board_render.board_text)
    board_blocks = staticmethod(board_render.board_blocks)
    reply_text = staticmethod(render.reply_text)
    unknown_reply_text = staticmethod(render.unknown_reply_text)
    ack_summary_text = staticmethod(render.ack_summary_text)
    status_text = staticmethod(render.status_text)


SLACK_PRESENTER = SlackPresenter()
