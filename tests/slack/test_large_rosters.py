"""A policy with a 500-member group and 150 from-numbers, end to end: every message, modal
and Home tab stays within Slack's Block Kit limits, what matters comes first, and nothing is
cut (long texts are split over sections, long lists summarised with a way to see them all).

The Slack stand-in refuses (and records) whatever Slack would refuse for its size; the
2Chat stand-in answers at once, and the policy's rate limits are out of the way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.slack.render.blocks import MAX_SECTION_TEXT, split_text
from bot.slack.render.escaping import untrusted
from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.signing import interaction_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

# The policies here raise requests_per_minute to 600000: so does the account.
pytestmark = pytest.mark.twochat_limit(600000)

SIZE, FROM_COUNT = 500, 150
CHANNEL, APPROVALS = "C0GENERAL", "C0APPROVALS"
# Over 3000 characters once & < > are escaped for Slack: one section cannot hold it.
LONG = "Failover at 02:00 UTC & <restart> of db-1, then checks: " * 60
FAILED = 40


def roster_policy(tmp: Path) -> Path:
    """The shipped policy plus 500 contacts in one group and 148 more from-numbers."""
    members = [f"m{i:03d}" for i in range(1, SIZE + 1)]
    contacts = "".join(
        f'\n  {name}: "+44 7700 900{499 + i:03d}"' for i, name in enumerate(members, 1)
    )
    group = f"db-oncall: [alice, bob]\n  everyone: [{', '.join(members)}]"
    senders = "".join(f'\n  n{i:03d}: "+44 20 7946 0{i:03d}"' for i in range(1, FROM_COUNT - 1))
    return policy_file(
        tmp,
        {
            'uk: "+442071838750"': f'uk: "+442071838750"{senders}',
            'carol: "+34600000001"': f'carol: "+34600000001"{contacts}',
            "db-oncall: [alice, bob]": group,
            "max_segments: 3": "max_segments: 40",
            "per_recipient_per_hour: 10000": (
                "per_recipient_per_hour: 10000\n  requests_per_minute: 600000"
            ),
        },
    )


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    return start_app(roster_policy(tmp_path_factory.mktemp("rosters")))


def blocks_of(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def view_of(args: dict[str, Any]) -> dict[str, Any]:
    view = args["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [str(b["text"]["text"]) for b in blocks if b["type"] == "section"]


def words(text: str) -> list[str]:
    """The words of a text, without the quote marks a split adds to a continued quote."""
    return [word for word in text.split() if word != ">"]


def calls(slack: SlackStandIn, method: str) -> list[dict[str, Any]]:
    return [call.args for call in list(slack.calls) if call.method == method]


def click(app: AppProcess, user: str, action_id: str, value: str) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "channel": {"id": APPROVALS},
        "container": {"type": "message", "channel_id": APPROVALS},
        "trigger_id": "1.2.trigger",
        "actions": [{"action_id": action_id, "block_id": "a", "value": value, "type": "button"}],
    }
    assert app.interact(payload).status_code == 200


def command(app: AppProcess, slack: SlackStandIn, text: str, user: str) -> dict[str, Any]:
    typed = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    response = app.command(typed, user, CHANNEL, slack.response_url())
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


# --- splitting, never cutting ----------------------------------------------------------------


def test_split_text_keeps_every_character_within_the_limit() -> None:
    text = "head line\n> " + untrusted(LONG) + "\n" + "x" * 7000 + "\ntail"
    pieces = split_text(text)
    assert all(len(piece) <= MAX_SECTION_TEXT for piece in pieces) and len(pieces) == 4
    assert pieces[0].startswith("head line\n> Failover") and pieces[-1].endswith("tail")
    assert "".join(words("\n".join(pieces))) == "".join(words(text))
    # A continued quote stays quoted, and no escape such as &amp; is broken in two.
    assert pieces[1].startswith("> ") and "Failover" in pieces[1]
    assert not any(re.search(r"&[a-z]{0,3}$", piece) for piece in pieces)
    assert split_text("short\nlines") == ["short\nlines"]


# --- a text to 500, approved, sent, reported ------------------------------------------------


def test_a_500_member_text_needing_approval_stays_within_limits_and_cuts_nothing(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """Long because it follows one text through every message it causes: the approval
    message, the outcome in its thread, the requester's copy and the full failure list."""
    assert command(app, slack, f"everyone {LONG}", "U0INTERN") == {}
    [approval] = slack.wait_for_posts(1, APPROVALS)
    head = ":raised_hand: Approval needed for a text by <@U0INTERN>\n"
    head += ":outbox_tray: <@U0INTERN> is texting 500 recipients from main (+17137157533)"
    assert approval["text"].startswith(head)
    text = approval["text"]
    assert text.index("> Failover") < text.index("*To:* m001 (+447700900500), m002")
    assert text.endswith("m005 (+447700900504) and 495 more")
    sections = section_texts(blocks_of(approval))
    assert len(sections) >= 2 and sections[0].startswith(head)  # sender and text come first
    assert words(" ".join(sections)) == words(text)  # split over sections, nothing cut
    assert "".join(words(untrusted(LONG))) in "".join(words(text))
    request_id = next(
        e["value"] for b in blocks_of(approval) if b["type"] == "actions" for e in b["elements"]
    )

    twochat.respond(400, {"message": "Invalid destination number"}, times=FAILED)
    click(app, "U0LEAD", "approval_approve", request_id)
    twochat.wait_for_sends(SIZE, timeout=60)
    [outcome] = slack.wait_until(
        lambda: [
            r for r in slack.thread_replies(APPROVALS) if "of 500 failed" in str(r.get("text"))
        ],
        30,
        "the outcome of the 500 sends",
    )
    lines = outcome["text"].split("\n")
    assert re.fullmatch(rf"\*{FAILED} of 500 failed\* — 460/500 queued by 2Chat in .* s", lines[0])
    assert sum(line.startswith(":x: m") for line in lines) == 25
    assert lines[-1] == f"…and {FAILED - 25} more failed: `/sms status {request_id}` lists them all"
    assert ":white_check_mark:" not in outcome["text"]

    copy = slack.wait_until(
        lambda: [r for r in slack.responses if "of 500 failed" in r["text"]], 5, "the copy"
    )[0]["text"]
    assert copy.startswith(":outbox_tray: <@U0INTERN> is texting 500 recipients")
    assert copy.count(":x: m") == 25  # the requester's private copy of the outcome

    assert command(app, slack, f"status {request_id}", "U0INTERN") == {}
    answers = slack.wait_until(
        lambda: [r["text"] for r in slack.responses if r["text"].startswith(":mag:")],
        5,
        "the full failure list",
    )
    listed = "\n".join(answers)
    assert listed.startswith(f":mag: *Text `{request_id}`*: 460/500 queued by 2Chat, 40 failed")
    assert listed.count("(HTTP 400): Invalid destination number") == FAILED
    assert len(re.findall(r"^:x: m\d{3} ", listed, re.MULTILINE)) == FAILED
    slack.assert_within_limits()


# --- the compose modal with 150 from-numbers -------------------------------------------------


def block_suggestion(app: AppProcess, user: str, typed: str) -> list[dict[str, Any]]:
    """What the app answers Slack's options request for the From menu."""
    payload = {
        "type": "block_suggestion",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "action_id": "from_number",
        "block_id": "from",
        "value": typed,
        "container": {"type": "view", "view_id": "V0001"},
        "view": {"id": "V0001", "type": "modal", "callback_id": "sms_compose"},
    }
    response = app.post_signed(interaction_body(payload))
    assert response.status_code == 200, response.text
    return list(response.json()["options"])


def test_the_from_menu_over_100_numbers_is_a_type_ahead_served_by_the_app(
    app: AppProcess, slack: SlackStandIn
) -> None:
    command(app, slack, "", "U0ADMIN")
    [opened] = slack.wait_until(lambda: calls(slack, "views.open"), 5, "the compose modal")
    view = view_of(opened)
    [from_block] = [b for b in view["blocks"] if b.get("block_id") == "from"]
    element = from_block["element"]
    assert element["type"] == "external_select" and "options" not in element
    assert element["initial_option"]["value"] == "main"
    assert from_block["hint"]["text"].startswith("150 numbers: type part of a name or number")

    everything = block_suggestion(app, "U0ADMIN", "")
    assert len(everything) == 100 and everything[0]["value"] == "main"
    assert [o["value"] for o in block_suggestion(app, "U0ADMIN", "n07")] == [
        f"n{i:03d}" for i in range(70, 80)
    ]
    by_number = block_suggestion(app, "U0ADMIN", "7946 0123")
    assert [o["text"]["text"] for o in by_number] == ["n123 (+442079460123)"]
    # Someone allowed one from-number only is offered just that one, typed or not.
    assert [o["value"] for o in block_suggestion(app, "U0DEV1", "n0")] == []
    command(app, slack, "", "U0DEV1")
    dev_view = view_of(slack.wait_until(lambda: calls(slack, "views.open")[1:], 5, "dev modal")[0])
    [dev_from] = [b for b in dev_view["blocks"] if b.get("block_id") == "from"]
    assert dev_from["element"]["type"] == "static_select"
    assert [o["value"] for o in dev_from["element"]["options"]] == ["main"]
    slack.assert_within_limits()


# --- /sms help and the App Home tab ----------------------------------------------------------


def test_help_and_home_summarise_long_lists_within_limits(
    app: AppProcess, slack: SlackStandIn
) -> None:
    help_text = command(app, slack, "help", "U0ADMIN")["text"]
    assert "everyone (500): m001, m002, m003, m004, m005 and 495 more" in help_text
    assert "You may send from: main, uk, n001," in help_text and "and 130 more." in help_text
    assert len(help_text) < 3000

    for n in range(24):
        command(app, slack, f"alice {n}: {LONG}", "U0INTERN")
    slack.wait_for_posts(24, APPROVALS, timeout=15)
    body = {"type": "app_home_opened", "user": "U0ADMIN", "tab": "home"}
    assert app.event(body, "EvRosterHome").status_code == 200
    [published] = slack.wait_until(lambda: calls(slack, "views.publish"), 5, "the Home tab")
    home = view_of(published)
    assert len(home["blocks"]) <= 100
    text = json.dumps(home)
    assert "Waiting for approval (" in text and "more in the approvals channel." in text
    assert "everyone (500): m001, m002, m003, m004, m005 and 495 more" in text
    slack.assert_within_limits()


def test_a_500_member_page_edits_its_reply_at_slacks_pace_with_counts_only(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """Progress edits carry counts, not a line per recipient (each costs the same at 5 or
    5,000), come at most about once a second, and a 429 from chat.update is waited out."""
    slack.enforce_update_rate = True
    twochat.set_delay(0.01)
    response = app.command(
        "everyone drill, please ignore", "U0ADMIN", CHANNEL, slack.response_url()
    )
    assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(SIZE, timeout=60)
    final = slack.wait_until(
        lambda: [u for u in calls(slack, "chat.update") if "all sent" in u.get("text", "")],
        30,
        "the final edit",
    )[-1]
    edits = calls(slack, "chat.update")
    # The request message's own edits (its state line) are not the progress reply's.
    progress = [e["text"] for e in edits if e is not final and e["ts"] == final["ts"]]
    assert progress, "a 500-member page shows progress before the end"
    for text in progress:
        assert re.fullmatch(
            r":hourglass_flowing_sand: Sending… (paced at \d+/min by [^—]+ — )?"
            r"\d+ of 500 done(, [a-z ]+ left)?: .+",
            text,
        )
        assert len(text) < 200
    assert len(final["text"]) < 40_000
    accepted_gaps = slack.too_fast_updates(CHANNEL)
    assert accepted_gaps == [], f"edits closer than Slack allows: {accepted_gaps}"
