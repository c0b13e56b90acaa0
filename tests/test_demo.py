"""``make demo``: the tour runs end to end against the stand-ins and shows what a newcomer
should see (a 2Chat message_id in a thread above all); the prompt acts on typed lines; and
Slack's mrkdwn reads right in a terminal."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from demo.screen import plain, render
from demo.shell import Shell
from demo.tour import run_tour
from demo.workspace import Shown, Workspace, running_workspace

MESSAGE_ID = re.compile(r"message_id `SMO[0-9a-f]{32}`")


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    with running_workspace() as running:
        yield running


@pytest.mark.app
def test_the_tour_shows_every_step_and_a_message_id_in_a_thread(workspace: Workspace) -> None:
    lines: list[str] = []
    run_tour(workspace, lines.append)
    out = "\n".join(lines)
    titles = ["Help", "A text", "A refusal", "A group page", "An approval", "An SMS reply"]
    for number, title in enumerate([*titles, "An ack by code"], start=1):
        assert f"── {number}. {title} " in out
    text_step = out.split("── 2. A text")[1].split("── 3.")[0]
    assert re.search(r"#general ↳ thread reply\n\s+✅ alice \(\+447700900123\): queued", text_step)
    assert MESSAGE_ID.search(text_step), text_step
    assert "You may text: db-oncall, carol, +447700900*." in out
    assert "⛔ Not sent: +12025550143" in out
    assert "all sent — 2/2 queued by 2Chat" in out
    assert "✅ Approved by @U0ADMIN" in out
    assert "💬 SMS reply from bob (+447700900456):" in out
    assert "✅ Acked by alice by SMS" in out
    assert "(the SMS bob got: “Acked by alice at" in out
    assert workspace.slack.limit_violations == []


@pytest.mark.app
def test_the_prompt_sends_approves_and_explains_what_it_cannot_do(workspace: Workspace) -> None:
    lines: list[str] = []
    shell = Shell(workspace, lines.append)
    for line in ["as U0INTERN", "/sms carol hi there", "as U0LEAD", "press Approve"]:
        assert shell.handle(line)
    assert shell.prompt() == "U0LEAD in #general> "
    out = "\n".join(lines)
    assert "✋ Approval needed for a text by @U0INTERN" in out
    assert "✅ Approved by @U0LEAD" in out
    assert re.search(r"✅ carol \(\+34600000001\): queued by 2Chat, " + MESSAGE_ID.pattern, out)
    lines.clear()
    assert shell.handle("press Escalate now")
    assert shell.handle("frobnicate")
    assert lines == [
        "  ? no button labelled 'Escalate now' on any message",
        "  ? not understood: 'frobnicate' (type help)",
    ]
    assert shell.handle("quit") is False


@pytest.mark.parametrize(
    ("mrkdwn", "shown"),
    [
        (":white_check_mark: *all sent* — <@U0ADMIN>", "✅ all sent — @U0ADMIN"),
        ("see <https://example.com/x|the runbook>", "see the runbook (https://example.com/x)"),
        ("in <#C0INCIDENT>, at <!date^1700000000^{time}|14:05 UTC>", "in #incident, at 14:05 UTC"),
        ("a &lt;b&gt; &amp; 2*3*4 :unknown_emoji:", "a <b> & 2*3*4 :unknown_emoji:"),
    ],
)
def test_mrkdwn_reads_as_slack_shows_it(mrkdwn: str, shown: str) -> None:
    assert plain(mrkdwn) == shown


def test_blocks_are_shown_instead_of_the_fallback_text() -> None:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Approval needed*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by <@U0INTERN>"}]},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "text": {"type": "plain_text", "text": "Reject"}},
            ],
        },
    ]
    card = render(Shown("post", "C0APPROVALS", "fallback text", blocks))
    assert card.splitlines() == [
        "  #approvals · sms-bridge",
        "    Approval needed",
        "    by @U0INTERN",
        "    [ Approve ]  [ Reject ]",
    ]
