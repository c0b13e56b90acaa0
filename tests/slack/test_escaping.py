"""Text the bridge did not write is shown literally everywhere, and numbers are masked
everywhere when the policy says so.

SMS texts, SMS replies, rejection reasons, 2Chat's error strings and what a user typed can
carry Slack markup: ``<!channel>`` would notify a whole channel, ``<https://evil|slack.com>``
would disguise a link. The app runs for real against the Slack and 2Chat stand-ins; every
post kind is driven, and everything the app sent to Slack is searched for the markup.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.model import Recipient
from bot.slack.render.approvals import verdict_text
from bot.slack.render.escaping import shown, untrusted
from bot.slack.render.labels import recipient_label
from bot.slack.render.replies import reply_text
from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.signing import interaction_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL, APPROVALS, INCIDENT, INBOX = "C0GENERAL", "C0APPROVALS", "C0INCIDENT", "C0SMSIN"
ALICE, STRANGER, UNNAMED = "+447700900123", "+447700900999", "+447700900789"
EVIL = "<!channel> re-auth at <https://evil.example|slack.com> & <@U0ADMIN> <#C0X> <!subteam^S1>"
# What Slack must receive instead: the same characters, escaped, so shown as typed.
ESCAPED = (
    "&lt;!channel&gt; re-auth at &lt;https://evil.example|slack.com&gt; &amp; "
    "&lt;@U0ADMIN&gt; &lt;#C0X&gt; &lt;!subteam^S1&gt;"
)
# Markup from EVIL that must never reach Slack unescaped (the bridge's own <@U…> mentions
# and <!date^…> times are fine, so these are EVIL's own pieces).
RAW = ("<!channel>", "<https://evil.example", "<#C0X>", "<!subteam^S1>", "<@U0ADMIN> <#C0X>")


def typed(text: str) -> str:
    """Text as Slack sends it in a command or event when a user types it: & < > escaped."""
    return html.escape(text, quote=False)


def leaks(everything: str) -> list[str]:
    return [raw for raw in RAW if raw in everything]


# --- the one escaping function ---------------------------------------------------------------


def test_untrusted_escapes_slack_markup_and_nothing_else() -> None:
    assert untrusted(EVIL) == ESCAPED
    assert untrusted("*bold* `code` _it_ :smile:") == "*bold* `code` _it_ :smile:"
    assert shown(f"{ALICE} said <!here>", masked=True) == "+44•••••0123 said &lt;!here&gt;"
    assert shown(f"{ALICE} said <!here>", masked=False) == f"{ALICE} said &lt;!here&gt;"


def test_names_and_reasons_from_outside_are_escaped() -> None:
    # 2Chat's conversation name is the one name the policy does not vet.
    named = Recipient(STRANGER, EVIL)
    assert ESCAPED in recipient_label(named, masked=False)
    reply = reply_text(named, EVIL, masked=True)
    assert reply.count(ESCAPED) == 2 and not leaks(reply) and STRANGER not in reply
    assert verdict_text("U0LEAD", False, EVIL, masked=False).endswith(f"<@U0LEAD>: {ESCAPED}")


# --- every post kind, end to end -------------------------------------------------------------


@pytest.fixture
def app(start_app: StartApp, tmp_path: Path) -> Iterator[AppProcess]:
    """Stopped at the end of its test: its reply poller must not read another test's SMS."""
    config = policy_file(
        tmp_path,
        {
            "per_recipient_per_hour: 10000": (
                "per_recipient_per_hour: 10000\nreplies:\n  poll_interval: 0.2s\n"
                f"  unknown_numbers_channel: {INBOX}"
            )
        },
    )
    process = start_app(config)
    yield process
    process.terminate()


def command(app: AppProcess, slack: SlackStandIn, text: str, user: str) -> dict[str, Any]:
    """``/sms`` as a user typed it; the ack's JSON ({} for an empty ack)."""
    response = app.command(typed(text), user, CHANNEL, slack.response_url())
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def top_posts(slack: SlackStandIn, channel: str) -> list[dict[str, Any]]:
    return [post for post in slack.posts(channel) if not post.get("thread_ts")]


def reject_with_reason(app: AppProcess, slack: SlackStandIn, request_id: str, reason: str) -> None:
    click = {
        "type": "block_actions",
        "user": {"id": "U0LEAD"},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "channel": {"id": APPROVALS},
        "container": {"type": "message", "channel_id": APPROVALS},
        "trigger_id": "1.2.trigger",
        "actions": [
            {
                "action_id": "approval_reject",
                "block_id": "approval",
                "value": request_id,
                "type": "button",
            }
        ],
    }
    assert app.interact(click).status_code == 200
    [opened] = slack.wait_until(
        lambda: [c.args for c in list(slack.calls) if c.method == "views.open"], 5, "the form"
    )
    form = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
    state = {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
    submission = {
        "type": "view_submission",
        "user": {"id": "U0LEAD"},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "view": {**form, "id": "V1", "state": {"values": state}},
    }
    response = app.post_signed(interaction_body(submission))
    assert response.status_code == 200 and not response.content


def approval_request_id(post: dict[str, Any]) -> str:
    blocks = json.loads(post["blocks"]) if isinstance(post["blocks"], str) else post["blocks"]
    return next(
        str(element["value"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    )


def home_of(app: AppProcess, slack: SlackStandIn, user: str) -> str:
    body = {"type": "app_home_opened", "user": user, "tab": "home", "channel": "D0HOME"}
    assert app.event(body, f"EvHome{user}").status_code == 200
    views = slack.wait_until(
        lambda: [
            c.args["view"]
            for c in list(slack.calls)
            if c.method == "views.publish" and c.args.get("user_id") == user
        ],
        5,
        f"{user}'s Home tab",
    )
    return str(views[-1])


def test_no_markup_from_outside_reaches_slack(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """Long because it drives every post kind in order: request, outcome, 2Chat error,
    approval, rejection, App Home, relayed reply, unknown-number inbox and ephemerals."""
    acks: list[dict[str, Any]] = []
    # A request message and its outcome; then a 2Chat error that echoes the markup.
    acks.append(command(app, slack, f"alice {EVIL}", "U0ADMIN"))
    [request] = slack.wait_until(lambda: top_posts(slack, CHANNEL), 5, "the request message")
    assert ESCAPED in request["text"] and request["unfurl_links"] is False
    slack.wait_for_thread_reply(CHANNEL)
    twochat.respond(400, {"message": EVIL}, times=1)
    acks.append(command(app, slack, "bob hello", "U0ADMIN"))
    failed = slack.wait_until(
        lambda: [r for r in slack.thread_replies(CHANNEL) if ":x:" in str(r.get("text"))],
        5,
        "the 2Chat error in a thread",
    )
    assert ESCAPED in failed[0]["text"]

    # An approval message, rejected with a reason typed by the approver.
    acks.append(command(app, slack, f"alice {EVIL}", "U0INTERN"))
    [approval] = slack.wait_for_posts(1, APPROVALS)
    assert ESCAPED in approval["text"] and ESCAPED in str(approval["blocks"])
    reject_with_reason(app, slack, approval_request_id(approval), EVIL)
    rejected = slack.wait_until(
        lambda: [c.args for c in list(slack.calls) if c.method == "chat.update"], 5, "the verdict"
    )
    assert f"Rejected by <@U0LEAD>: {ESCAPED}" in rejected[0]["text"]
    slack.wait_until(
        lambda: any("Nothing was sent" in r["text"] for r in slack.responses), 5, "the verdict"
    )

    # App Home: a pending approval for an approver, the rejected text for the requester.
    acks.append(command(app, slack, f"carol {EVIL}", "U0INTERN"))
    slack.wait_for_posts(2, APPROVALS)
    assert ESCAPED in home_of(app, slack, "U0ADMIN")
    assert home_of(app, slack, "U0INTERN").count(ESCAPED) >= 3  # 2 texts and the reason

    # An SMS reply in the request's thread; an SMS from a stranger in the inbox channel.
    twochat.inbound(ALICE, EVIL)
    twochat.inbound(STRANGER, EVIL)
    relayed = slack.wait_until(
        lambda: [r for r in slack.thread_replies(CHANNEL) if "SMS reply" in str(r.get("text"))],
        5,
        "the relayed reply",
    )
    assert ESCAPED in relayed[0]["text"] and relayed[0]["thread_ts"] == request["_ts"]
    [inbox] = slack.wait_for_posts(1, INBOX)
    assert ESCAPED in inbox["text"] and inbox["unfurl_links"] is False

    # Ephemerals quoting what was typed: a slash command's and a page's refusal.
    refused = command(app, slack, "alice,<!channel> hi", "U0ADMIN")
    assert "'&lt;!channel&gt;' is not a contact" in refused["text"]
    acks.append(refused)
    mention = f"<@UBOT> page alice,{typed('<!channel>')} the db is down"
    ts = "1810000000.000001"
    event = {"type": "app_mention", "user": "U0DEV1", "text": mention, "ts": ts, "event_ts": ts}
    assert app.event({**event, "channel": INCIDENT}, "EvEscapingPage").status_code == 200
    whispered = slack.wait_until(
        lambda: [c.args for c in list(slack.calls) if c.method == "chat.postEphemeral"],
        5,
        "the page's refusal",
    )
    assert "'&lt;!channel&gt;' is not a contact" in whispered[0]["text"]
    acks.append(command(app, slack, "status <!channel>", "U0ADMIN"))

    # Private answers by response_url carry the same texts, and unfurl nothing either.
    assert slack.responses and all(r["unfurl_links"] is False for r in slack.responses)
    everything = slack.all_text() + json.dumps(acks)
    assert leaks(everything) == [], everything
    slack.assert_within_limits()


# --- masking -----------------------------------------------------------------------------------


@pytest.fixture
def masked_app(start_app: StartApp, tmp_path: Path) -> Iterator[AppProcess]:
    """Numbers masked; a group with a member known only by number."""
    config = policy_file(
        tmp_path,
        {
            "mask_numbers: false": "mask_numbers: true",
            "db-oncall: [alice, bob]": f'db-oncall: [alice, bob, "{UNNAMED}"]',
            "per_recipient_per_hour: 10000": (
                "per_recipient_per_hour: 10000\nreplies:\n  poll_interval: 0.2s"
            ),
        },
    )
    process = start_app(config)
    yield process
    process.terminate()


def test_masked_numbers_stay_masked_in_stop_lines_group_lists_and_home(
    masked_app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    command(masked_app, slack, "db-oncall first", "U0ADMIN")
    twochat.wait_for_sends(3)
    slack.wait_for_thread_reply(CHANNEL)
    twochat.inbound(UNNAMED, "STOP")
    slack.wait_until(
        lambda: any("has opted out" in str(r.get("text")) for r in slack.thread_replies(CHANNEL)),
        5,
        "the opt-out note",
    )
    command(masked_app, slack, "db-oncall second", "U0ADMIN")
    [stop_line] = slack.wait_until(
        lambda: [r for r in slack.thread_replies(CHANNEL) if "replied STOP" in str(r["text"])],
        5,
        "the STOP line of the second outcome",
    )
    assert ":x: +44•••••0789: not sent: +44•••••0789 replied STOP" in stop_line["text"]
    help_text = command(masked_app, slack, "help", "U0DEV1")["text"]
    assert "db-oncall (3): alice, bob, +44•••••0789" in help_text
    assert "Opted out (replied STOP" in help_text and "+44•••••0789 (since" in help_text
    home = home_of(masked_app, slack, "U0ADMIN")
    assert "db-oncall (3): alice, bob, +44•••••0789" in home
    everything = slack.all_text() + help_text
    # (USAGE's example number is alice's: the example is no leak, her label would be.)
    assert UNNAMED not in everything and f"alice ({ALICE})" not in everything
    assert "7700900789" not in everything
