"""The pager board: one message in an escalating page's thread, edited as the ladder moves.

It shows the rung reached, who was texted when, who acked (and who acked late), and a
countdown to the next rung in Slack's own ``<!date^…>`` formatting, so every reader sees it
in their time zone and it stays right between edits. Pure rendering, from stored data.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.escalation import rung_label
from bot.sending.ports import Board
from bot.sending.queries import EscalationStep
from bot.slack.ids import ActionId
from bot.slack.render.blocks import Block, button, sections
from bot.slack.render.escaping import shown, untrusted

_VIA = {"sms": "by SMS", "button": "with the Ack button", "reaction": "with :white_check_mark:"}


def slack_time(at: datetime, token: str = "{time}") -> str:
    """A time every reader sees in their own zone; the fallback is UTC."""
    return f"<!date^{int(at.timestamp())}^{token}|{at.strftime('%H:%M:%S UTC')}>"


def board_text(board: Board) -> str:
    lines = [_headline(board)]
    lines.extend(_rungs(board))
    for step in board.steps:
        if step.kind == "late_ack" and step.actor:
            lines.append(f"Late ack: {_acker(board, step)} at {slack_time(step.at)}")
    next_line = _next(board)
    if next_line:
        lines.append(next_line)
    return "\n".join(lines)


def board_blocks(board: Board) -> list[Block]:
    """The text, and while the ladder is open its buttons (value: the ladder's id)."""
    blocks = sections(board_text(board))
    if board.escalation.state == "open":
        value = board.escalation.id
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    button("Ack", ActionId.LADDER_ACK, value, "primary"),
                    button("Escalate now", ActionId.LADDER_ESCALATE, value),
                    button("Stop paging", ActionId.LADDER_STOP, value, "danger"),
                ],
            }
        )
    return blocks


def _headline(board: Board) -> str:
    esc = board.escalation
    name = untrusted(esc.name)
    tiers = len(board.ladder.tiers) if board.ladder else esc.tier + 1
    rounds = board.ladder.repeat + 1 if board.ladder else esc.round + 1
    where = f"tier {esc.tier + 1} of {tiers}"
    if rounds > 1:
        where += f", round {esc.round + 1} of {rounds}"
    if esc.state == "acked" and esc.acked_by and esc.acked_at:
        via = _VIA.get(esc.acked_via or "", "")
        who = board.who(esc.acked_by)
        return (
            f":white_check_mark: *Acked* by {who} {via} at {slack_time(esc.acked_at)} "
            f"— paging stopped at {where} (`{name}`, code {esc.code})"
        )
    if esc.state == "stopped":
        by = board.who(esc.closed_by) if esc.closed_by else "someone"
        return f":octagonal_sign: *Paging stopped* by {by} at {where} (`{name}`, code {esc.code})"
    if esc.state == "exhausted":
        return f":warning: *Nobody acked*: the ladder `{name}` ran out (code {esc.code})"
    return f":rotating_light: *Escalating* (`{name}`) — {where} — reply code *{esc.code}*"


def _rungs(board: Board) -> list[str]:
    """One line per rung texted: when, and whom."""
    lines = []
    for step in board.steps:
        if step.kind != "tier" or step.tier is None or step.round is None:
            continue
        names = [
            board.who(t.number)
            for t in board.texted
            if (t.tier, t.round) == (step.tier, step.round)
        ]
        label = rung_label(step.tier, step.round)
        by = f" (escalated by {board.who(step.actor)})" if step.actor else ""
        whom = ", ".join(names) if names else "texting…" if step.request_id else "nobody to text"
        lines.append(f"• {label} at {slack_time(step.at)}{by}: {whom}")
    return lines


def _next(board: Board) -> str | None:
    esc, ladder = board.escalation, board.ladder
    if esc.state != "open" or esc.next_tier_at is None or ladder is None:
        return None
    countdown = slack_time(esc.next_tier_at, "{ago}")
    step = ladder.step_after(esc.tier, esc.round)
    if step is None:
        return f"No ack by {countdown}: the ladder ends (nobody is left to text)."
    targets = ", ".join(shown(t, board.masked) for t in ladder.tiers[step[0]].page)
    return f"Next: tier {step[0] + 1} ({targets}) {countdown} unless someone acks."


def _acker(board: Board, step: EscalationStep) -> str:
    via = _VIA.get(step.via or "", "")
    return f"{board.who(step.actor or '')} {via}".strip()
