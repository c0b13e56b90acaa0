"""Two-way SMS: replies relayed into threads, ack by reply, STOP/START opt-out,
``/sms status`` and ``check-config --online``. The app runs for real against the Slack and
2Chat stand-ins; the 2Chat stand-in keeps conversations and serves 2Chat's read endpoints.

Every test that polls starts its own app (and stops it), so no two pollers with separate
databases read the stand-in's conversations at once.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_policy, load_policy_text, summarize
from bot.core.model import Recipient, reply_keyword
from bot.errors import ConfigError, TwoChatError
from bot.sending.replies import classify
from bot.slack.render.refusals import opted_out_reason
from bot.slack.render.replies import ack_summary_text
from bot.sms.twochat import Conversation, SmsMessage, TwoChatClient, e164, epoch_seconds
from tests.appproc import TWOCHAT_KEY, AppProcess, hermetic_env
from tests.conftest import SHIPPED_CONFIG, StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
INCIDENT = "C0INCIDENT"
UNKNOWN = "C0SMSIN"
ALICE, BOB, CAROL = "+447700900123", "+447700900456", "+34600000001"
STRANGER = "+447700900999"
MAIN, UK = "+17137157533", "+442071838750"
POLL = "0.2s"
_ids = itertools.count(1)


# --- helpers ---------------------------------------------------------------------------------


def replies_config(tmp: Path, **replies: str) -> Path:
    """The shipped policy with generous limits, plus a ``replies`` section."""
    section = "\n".join(
        f"  {key}: {value}" for key, value in {"poll_interval": POLL, **replies}.items()
    )
    return policy_file(
        tmp,
        {"per_recipient_per_hour: 10000": f"per_recipient_per_hour: 10000\nreplies:\n{section}"},
    )


@pytest.fixture
def relay_app(start_app: StartApp, tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """Start an app with the reply poller on; stopped at the end of the test."""
    started: list[AppProcess] = []

    def start(config: Path | None = None, **env: str) -> AppProcess:
        app = start_app(config or replies_config(tmp_path), **env)
        started.append(app)
        return app

    yield start
    for app in started:
        app.terminate()


def send(app: AppProcess, slack: SlackStandIn, text: str, user: str = "U0ADMIN") -> dict[str, Any]:
    """``/sms`` that must be accepted; returns the request message it posted in CHANNEL."""
    before = len([p for p in slack.posts(CHANNEL) if not p.get("thread_ts")])
    response = app.command(text, user, CHANNEL, slack.response_url())
    assert response.status_code == 200 and not response.content, response.text
    requests = slack.wait_until(
        lambda: (
            (top := [p for p in slack.posts(CHANNEL) if not p.get("thread_ts")])
            and len(top) > before
            and top
        ),
        5,
        f"the request message of {text!r}",
    )
    return requests[-1]


def replies_in(slack: SlackStandIn, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    """Relayed SMS replies in one thread, as they read now."""
    return [
        slack.latest(post)
        for post in slack.posts(channel)
        if post.get("thread_ts") == thread_ts and ":speech_balloon:" in str(post.get("text"))
    ]


def wait_replies(slack: SlackStandIn, channel: str, thread_ts: str, n: int) -> list[dict[str, Any]]:
    return slack.wait_until(
        lambda: len(found := replies_in(slack, channel, thread_ts)) >= n and found,
        5,
        f"{n} relayed replies under {thread_ts}; posts: {slack.posts(channel)}",
    )


def settle(seconds: float = 0.8) -> None:
    """Several poll intervals, for things that must NOT happen to have had their chance."""
    time.sleep(seconds)


def deliver_event(app: AppProcess, event: dict[str, Any]) -> None:
    assert app.event(event, f"EvReplies{next(_ids):06d}").status_code == 200


def page_by_mention(app: AppProcess, text: str) -> str:
    """``@sms-bridge page …`` in the incident channel; returns the mention's ts (the thread)."""
    ts = f"1810000000.{next(_ids):06d}"
    deliver_event(
        app,
        {
            "type": "app_mention",
            "user": "U0DEV1",
            "text": f"<@UBOT> {text}",
            "ts": ts,
            "channel": INCIDENT,
            "event_ts": ts,
        },
    )
    return ts


def click(app: AppProcess, user: str, action_id: str, value: str, *, home: bool) -> None:
    """A button click, in the approvals channel or in the App Home tab (no channel there)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
    }
    if home:
        payload["container"] = {"type": "view", "view_id": "VHOME"}
        payload["view"] = {"id": "VHOME", "type": "home", "blocks": []}
    else:
        payload["channel"] = {"id": "C0APPROVALS"}
        payload["container"] = {"type": "message", "channel_id": "C0APPROVALS"}
    assert app.interact(payload).status_code == 200


def published(slack: SlackStandIn, user: str) -> list[dict[str, Any]]:
    views = [
        call.args["view"]
        for call in list(slack.calls)
        if call.method == "views.publish" and call.args.get("user_id") == user
    ]
    return [json.loads(view) if isinstance(view, str) else view for view in views]


def buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def dms(slack: SlackStandIn, user: str) -> list[str]:
    return [str(post["text"]) for post in slack.posts(user)]


# --- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "page", "kind"),
    [
        ("STOP", False, "stop"),
        (" stop. ", True, "stop"),
        ("Unsubscribe", False, "stop"),
        ("start", False, "start"),
        ("OK", True, "ack"),
        ("ok!", True, "ack"),
        ("Ack", True, "ack"),
        ("ok", False, "reply"),  # acks only mean something for a page
        ("ok, on my way", True, "reply"),
        ("please stop paging me at night", True, "reply"),
    ],
)
def test_classify(text: str, page: bool, kind: str) -> None:
    assert classify(text, ("ack", "ok"), page=page) == kind


def test_normalise_and_numbers() -> None:
    assert reply_keyword("  Roger   THAT! ") == "roger that"
    assert e164("+44 7700 900123") == ALICE and e164("17137157533") == MAIN
    assert epoch_seconds(1771502400) == 1771502400
    assert epoch_seconds(1771502400123) == 1771502400
    assert epoch_seconds("1771502400") == 1771502400
    assert epoch_seconds("2026-02-19T12:00:00Z") == 1771502400
    assert epoch_seconds("yesterday") is None and epoch_seconds(True) is None


def test_shapes_are_read_defensively() -> None:
    conversation = Conversation.parse(
        {"contact": ALICE, "last_message_direction": "INBOUND", "last_message_ts": "1771502400"}
    )
    assert conversation is not None
    assert (conversation.last_direction, conversation.last_ts) == ("inbound", 1771502400)
    assert Conversation.parse({"last_message_ts": 1}) is None
    message = SmsMessage.parse({"uuid": "SMI1", "source": ALICE, "text": "hi", "timestamp": 5})
    assert message is not None and message.direction == "inbound"  # from the SMI prefix
    assert SmsMessage.parse({"text": "no uuid"}) is None


def test_ack_summary_and_opt_out_texts() -> None:
    alice, bob = Recipient(ALICE, "alice"), Recipient(BOB, "bob")
    at = datetime(2026, 2, 19, 12, 5, tzinfo=UTC)
    text = ack_summary_text([alice, bob], {ALICE: at}, masked=False)
    assert "*Acknowledged by 1 of 2*" in text
    assert f"alice ({ALICE}) at <!date^{int(at.timestamp())}^" in text and "12:05 UTC>" in text
    assert f"Not yet: bob ({BOB})" in text
    assert "+44•••••0123" in ack_summary_text([alice], {ALICE: at}, masked=True)
    assert opted_out_reason([alice]) == "alice replied STOP; they have opted out"


# --- configuration ---------------------------------------------------------------------------


def test_replies_are_off_by_default_and_the_spec_example_still_loads() -> None:
    policy = load_policy(SHIPPED_CONFIG)
    assert policy.replies.poll_interval is None
    assert policy.replies.window == timedelta(hours=24)
    assert policy.replies.ack_words == ("ack", "ok")
    assert policy.replies.unknown_numbers_channel is None
    assert "replies: not polled" in summarize(policy)


def test_replies_section_loads_and_summarises_its_cost() -> None:
    text = SHIPPED_CONFIG.read_text() + (
        "replies:\n  poll_interval: 30s\n  window: 2h\n  ack_words: [OK, Roger]\n"
        "  unknown_numbers_channel: C0SMSIN\n"
    )
    policy = load_policy_text(text, "t.yaml")
    assert policy.replies.poll_interval == timedelta(seconds=30)
    assert policy.replies.window == timedelta(hours=2)
    assert policy.replies.ack_words == ("ok", "roger")
    assert policy.replies.unknown_numbers_channel == "C0SMSIN"
    summary = summarize(policy)
    assert "polled every 30s while a send is younger than 2h" in summary
    assert "up to 120 2Chat credits an hour per from_number" in summary
    fast = load_policy_text(SHIPPED_CONFIG.read_text() + "replies:\n  poll_interval: 0.5s\n")
    assert fast.replies.poll_interval == timedelta(milliseconds=500)


def test_replies_section_mistakes_are_located() -> None:
    base = SHIPPED_CONFIG.read_text()
    line = base.count("\n") + 1  # "replies:" is the first line after the example
    text = base + (
        "replies:\n  poll_interval: soon\n  window: 0m\n  ack_words: [ok, STOP]\n"
        "  unknown_numbers_channel: general\n  poll_intervall: 1m\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_policy_text(text, "t.yaml")
    problems = caught.value.problems
    assert any(p.startswith(f"t.yaml:{line + 1}: replies.poll_interval: ") for p in problems)
    assert any(p.startswith(f"t.yaml:{line + 2}: replies.window: ") for p in problems)
    assert f"t.yaml:{line + 3}: replies.ack_words[1]: 'STOP' is an opt-out word" in "\n".join(
        problems
    )
    assert any(
        p.startswith(f"t.yaml:{line + 4}: replies.unknown_numbers_channel: 'general' is not")
        for p in problems
    )
    assert any(
        "unknown key 'poll_intervall' (did you mean 'poll_interval'?)" in p for p in problems
    )


# --- the 2Chat client's read endpoints -------------------------------------------------------


async def test_client_reads_conversations_messages_and_one_message(
    twochat: TwoChatStandIn,
) -> None:
    async with TwoChatClient(TWOCHAT_KEY, twochat.url) as client:
        sent = await client.send_sms(MAIN, ALICE, "hello")
        reply = twochat.inbound(ALICE, "hi back")
        [conversation] = await client.conversations("SMS1")
        assert (conversation.contact, conversation.last_direction) == (ALICE, "inbound")
        messages = await client.messages("SMS1", ALICE)
        assert [(m.uuid, m.direction, m.text) for m in messages] == [
            (sent, "outbound", "hello"),
            (reply, "inbound", "hi back"),
        ]
        assert messages[1].source == ALICE and messages[1].destination == MAIN
        older = await client.messages("SMS1", ALICE, before_ts=messages[1].timestamp)
        assert [m.uuid for m in older] == [sent]
        found = await client.message(sent)
        assert found["uuid"] == sent and found["status"] == "sent"
        with pytest.raises(TwoChatError, match="HTTP 404"):
            await client.message("SMO-missing")
        assert await client.conversations("SMS-none") == []


# --- the reply relay, for real ---------------------------------------------------------------


def test_no_2chat_calls_while_nothing_was_sent_in_the_window(
    relay_app: Callable[..., AppProcess], twochat: TwoChatStandIn
) -> None:
    relay_app()
    twochat.inbound(ALICE, "anyone there?")
    settle()
    assert twochat.api_calls("GET /open/sms/c") == []
    assert twochat.api_calls("GET /open/sms/messages") == []


def test_a_reply_appears_once_in_the_thread_of_the_latest_request(
    relay_app: Callable[..., AppProcess], slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = relay_app()
    first = send(app, slack, "alice first text")
    slack.wait_for_thread_reply(CHANNEL)
    latest = send(app, slack, "alice, carol second text")
    twochat.wait_for_sends(3)
    twochat.inbound(ALICE, "On my way\nETA 10 min")
    [reply] = wait_replies(slack, CHANNEL, latest["_ts"], 1)
    assert reply["text"] == (
        f":speech_balloon: SMS reply from *alice* ({ALICE}):\n> On my way\n> ETA 10 min"
    )
    settle()
    assert len(replies_in(slack, CHANNEL, latest["_ts"])) == 1
    assert replies_in(slack, CHANNEL, first["_ts"]) == []
    # A messages call per move of a conversation at most (alice's: two texts and a reply;
    # carol's: one text); quiet conversations cost none.
    reads = twochat.api_calls("GET /open/sms/messages")
    assert 1 <= reads.count(f"GET /open/sms/messages/SMS1/{ALICE}") <= 3
    assert reads.count(f"GET /open/sms/messages/SMS1/{CAROL}") <= 1
    settle()
    assert twochat.api_calls("GET /open/sms/messages") == reads
    assert len(twochat.api_calls("GET /open/sms/channels")) == 1
    twochat.inbound(CAROL, "who is this?")
    twochat.inbound(ALICE, "there now")
    wait_replies(slack, CHANNEL, latest["_ts"], 3)
    settle()
    texts = [r["text"] for r in replies_in(slack, CHANNEL, latest["_ts"])]
    assert len(texts) == 3 and sum("there now" in t for t in texts) == 1
    assert any(f"from *carol* ({CAROL}):\n> who is this?" in t for t in texts)
    assert ALICE not in app.log() and CAROL not in app.log()  # numbers in logs are masked


def test_unknown_numbers_go_to_the_configured_channel(
    relay_app: Callable[..., AppProcess],
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
) -> None:
    app = relay_app(replies_config(tmp_path, unknown_numbers_channel=UNKNOWN))
    send(app, slack, "alice hi")
    twochat.wait_for_sends(1)
    twochat.inbound(STRANGER, "wrong number?")
    [post] = slack.wait_for_posts(1, channel=UNKNOWN)
    assert f"from *{STRANGER}*" in post["text"] and "> wrong number?" in post["text"]
    assert f"main ({MAIN})" in post["text"]
    settle()
    assert len(slack.posts(UNKNOWN)) == 1


def test_unknown_numbers_are_dropped_without_reading_them(
    relay_app: Callable[..., AppProcess], slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = relay_app()
    send(app, slack, "alice hi")
    twochat.wait_for_sends(1)
    twochat.inbound(STRANGER, "wrong number?")
    before = len(twochat.api_calls("GET /open/sms/conversations"))
    settle(1.0)
    # One conversations call per interval (0.2 s), for the one from-number that texted.
    calls = twochat.api_calls("GET /open/sms/conversations")
    assert 2 <= len(calls) - before <= 7
    assert set(calls) == {"GET /open/sms/conversations/SMS1"}
    assert twochat.api_calls(f"GET /open/sms/messages/SMS1/{STRANGER}") == []
    assert not [p for p in slack.posts() if "wrong number" in str(p.get("text"))]


def test_ack_by_reply_marks_page_recipients(
    relay_app: Callable[..., AppProcess], slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = relay_app()
    thread = page_by_mention(app, "page db-oncall DB primary is down")
    twochat.wait_for_sends(2)
    slack.wait_until(
        lambda: any("2/2 queued" in str(r.get("text")) for r in slack.thread_replies(INCIDENT)),
        5,
        "the page's outcome",
    )
    twochat.inbound(ALICE, "OK")
    wait_replies(slack, INCIDENT, thread, 1)

    def summaries() -> list[dict[str, Any]]:
        return [
            slack.latest(p)
            for p in slack.posts(INCIDENT)
            if p.get("thread_ts") == thread and "Acknowledged by" in str(p.get("text"))
        ]

    [summary] = slack.wait_until(summaries, 5, "the acknowledgement summary")
    assert "*Acknowledged by 1 of 2*" in summary["text"]
    assert f"alice ({ALICE}) at <!date^" in summary["text"]
    assert f"Not yet: bob ({BOB})" in summary["text"]
    twochat.inbound(BOB, "ack")
    slack.wait_until(
        lambda: "Acknowledged by 2 of 2" in summaries()[0]["text"], 5, "the edited summary"
    )
    settle()
    assert len(summaries()) == 1  # one summary reply, edited in place
    assert "Not yet" not in summaries()[0]["text"]
    assert len(replies_in(slack, INCIDENT, thread)) == 2
    assert "acknowledged the page" in replies_in(slack, INCIDENT, thread)[1]["text"]


def test_stop_opts_out_until_start(
    relay_app: Callable[..., AppProcess], slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = relay_app()
    request = send(app, slack, "alice hello")
    twochat.wait_for_sends(1)
    twochat.inbound(ALICE, "STOP")
    [reply] = wait_replies(slack, CHANNEL, request["_ts"], 1)
    assert "alice has opted out" in reply["text"]
    refused = app.command("alice are you there", "U0ADMIN", CHANNEL, slack.response_url()).json()
    assert refused["response_type"] == "ephemeral"
    assert "alice replied STOP; they have opted out" in refused["text"]
    help_text = app.command("help", "U0DEV1", CHANNEL, slack.response_url()).json()["text"]
    assert "Opted out (replied STOP" in help_text and f"alice ({ALICE})" in help_text
    # A group still reaches those who did not opt out; the opted-out one is shown not sent.
    group = send(app, slack, "db-oncall heads up")
    twochat.wait_for_sends(2)
    outcome = slack.wait_until(
        lambda: [r for r in slack.thread_replies(CHANNEL) if r.get("thread_ts") == group["_ts"]],
        5,
        "the group's outcome",
    )[-1]
    assert f":x: alice ({ALICE}): not sent: alice replied STOP" in outcome["text"]
    assert [s["to_number"] for s in twochat.sends] == [ALICE, BOB]
    twochat.inbound(ALICE, "start")  # answers the last text that reached alice: the first
    slack.wait_until(
        lambda: any(
            "alice opted back in" in r["text"] for r in replies_in(slack, CHANNEL, request["_ts"])
        ),
        5,
        "the opt-in note",
    )
    send(app, slack, "alice welcome back")
    assert twochat.wait_for_sends(3)[-1]["to_number"] == ALICE


def test_two_pollers_on_one_postgres_post_each_reply_once(
    relay_app: Callable[..., AppProcess],
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    postgres_url: str,
) -> None:
    one = relay_app(DATABASE_URL=postgres_url)
    relay_app(DATABASE_URL=postgres_url)
    request = send(one, slack, "alice, bob status?")
    twochat.wait_for_sends(2)
    for n in range(3):
        twochat.inbound(ALICE, f"alice {n}")
        twochat.inbound(BOB, f"bob {n}")
    wait_replies(slack, CHANNEL, request["_ts"], 6)
    settle(1.0)
    texts = sorted(r["text"].rsplit("> ", 1)[1] for r in replies_in(slack, CHANNEL, request["_ts"]))
    assert texts == sorted(f"{who} {n}" for who in ("alice", "bob") for n in range(3))


# --- App Home --------------------------------------------------------------------------------


def test_app_home_lists_approvals_only_for_approvers_and_approving_sends_once(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(policy_file(tmp_path))
    send(app, slack, "carol hola", user="U0DEV1")
    twochat.wait_for_sends(1)
    assert (
        app.command("alice please call", "U0INTERN", CHANNEL, slack.response_url()).status_code
        == 200
    )
    slack.wait_for_posts(1, channel="C0APPROVALS")

    deliver_event(app, {"type": "app_home_opened", "user": "U0DEV1", "tab": "home"})
    [dev_view] = slack.wait_until(lambda: published(slack, "U0DEV1"), 5, "U0DEV1's home")
    dev_text = json.dumps(dev_view)
    assert dev_view["type"] == "home" and buttons(dev_view) == []
    assert "Waiting for approval" not in dev_text
    assert "You may text: db-oncall, carol" in dev_text
    assert "carol (+34600000001): queued by 2Chat, message_id `SMO" in dev_text

    deliver_event(app, {"type": "app_home_opened", "user": "U0ADMIN", "tab": "home"})
    [admin_view] = slack.wait_until(lambda: published(slack, "U0ADMIN"), 5, "U0ADMIN's home")
    [(approve, request_id), (reject, same_id)] = buttons(admin_view)
    assert (approve, reject) == ("approval_approve", "approval_reject") and request_id == same_id
    assert "Waiting for approval (1)" in json.dumps(admin_view)
    assert f"texting alice ({ALICE})" in json.dumps(admin_view)
    assert "> please call" in json.dumps(admin_view)

    deliver_event(app, {"type": "app_home_opened", "user": "U0INTERN", "tab": "messages"})
    settle(0.3)
    assert published(slack, "U0INTERN") == []  # the Messages tab publishes nothing

    # From Home and from the channel at once: one SMS, and the Home tab loses its buttons.
    click(app, "U0ADMIN", "approval_approve", request_id, home=True)
    click(app, "U0LEAD", "approval_approve", request_id, home=False)
    click(app, "U0ADMIN", "approval_approve", request_id, home=True)
    twochat.wait_for_sends(2)
    slack.wait_until(lambda: len(published(slack, "U0ADMIN")) >= 3, 5, "two Home refreshes")
    slack.wait_until(
        lambda: any("already approved" in text for text in dms(slack, "U0ADMIN")),
        5,
        "a private 'already approved' for a late click in Home",
    )
    settle(0.5)
    assert [s["to_number"] for s in twochat.sends] == [CAROL, ALICE]
    assert buttons(published(slack, "U0ADMIN")[-1]) == []


def test_app_home_shows_your_own_approval_without_buttons(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(policy_file(tmp_path, {"users: [U0INTERN]": "users: [U0INTERN, U0LEAD]"}))
    app.command("alice call me", "U0LEAD", CHANNEL, slack.response_url())
    slack.wait_for_posts(1, channel="C0APPROVALS")
    deliver_event(app, {"type": "app_home_opened", "user": "U0LEAD", "tab": "home"})
    [view] = slack.wait_until(lambda: published(slack, "U0LEAD"), 5, "U0LEAD's home")
    assert buttons(view) == []
    assert "This is your own text: another approver decides." in json.dumps(view)
    assert "waiting for an approver" in json.dumps(view)


# --- /sms status -----------------------------------------------------------------------------


def test_sms_status_shows_the_bridge_record_and_2chat(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    app = start_app(policy_file(tmp_path))
    send(app, slack, "carol hola")
    [sent] = twochat.wait_for_sends(1)
    outcome = slack.wait_for_thread_reply(CHANNEL)["text"]
    message_id = outcome.split("message_id `", 1)[1].split("`", 1)[0]
    slack.responses.clear()
    response = app.command(f"status {message_id}", "U0ADMIN", CHANNEL, slack.response_url())
    assert response.status_code == 200 and not response.content
    [answer] = slack.wait_for_response(1)
    text = answer["text"]
    assert answer["response_type"] == "ephemeral"
    assert f"*SMS `{message_id}`* to carol ({CAROL})" in text
    assert "requested by <@U0ADMIN>" in text and "queued by 2Chat" in text
    assert "*2Chat says:*" in text and "status: `sent`" in text
    assert (
        sent["text"] not in text.split("*2Chat says:*")[1]
    )  # 2Chat's copy of the text is left out
    assert twochat.api_calls("GET /open/sms/message/") == [f"GET /open/sms/message/{message_id}"]

    unknown = app.command("status SMOnope", "U0ADMIN", CHANNEL, slack.response_url())
    assert not unknown.content
    assert "has no SMS with message_id `SMOnope`" in slack.wait_for_response(2)[1]["text"]
    assert len(twochat.api_calls("GET /open/sms/message/")) == 1  # unknown ids are not asked
    usage = app.command("status", "U0ADMIN", CHANNEL, slack.response_url()).json()
    assert "Usage: `/sms status <message_id>`" in usage["text"]
    app.command(f"status {message_id}", "U0STRANGER", CHANNEL, slack.response_url())
    assert "Only people who may send SMS" in slack.wait_for_response(3)[2]["text"]


# --- check-config --online -------------------------------------------------------------------


def check_online(
    twochat: TwoChatStandIn, key: str | None = TWOCHAT_KEY
) -> subprocess.CompletedProcess[str]:
    env = hermetic_env(TWOCHAT_API_URL=twochat.url)
    if key is not None:
        env["TWOCHAT_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", str(SHIPPED_CONFIG), "--online"],
        cwd=tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def uk_channel(**changes: Any) -> dict[str, Any]:
    return {
        "uuid": "SMS2",
        "phone_number": UK,
        "friendly_name": "uk",
        "supports_sms_out": True,
        "enabled": True,
        **changes,
    }


@pytest.mark.app
def test_check_config_online_good(twochat: TwoChatStandIn) -> None:
    twochat.channels.append(uk_channel())
    result = check_online(twochat)
    assert result.returncode == 0, result.stderr
    assert "TWOCHAT_API_KEY is valid; the account has 2 SMS number(s)" in result.stdout
    assert f"from_numbers.main ({MAIN}): OK, 2Chat channel SMS1" in result.stdout
    assert f"from_numbers.uk ({UK}): OK, 2Chat channel SMS2" in result.stdout
    assert twochat.api_calls("GET") == ["GET /open/sms/channels"]  # one credit


@pytest.mark.app
def test_check_config_online_bad(twochat: TwoChatStandIn) -> None:
    result = check_online(twochat)
    assert result.returncode == 1
    assert f"from_numbers.uk ({UK}): not an SMS number of this 2Chat account" in result.stderr
    twochat.channels = [
        {**twochat.channels[0], "enabled": False},
        uk_channel(supports_sms_out=False, phone_number="+44 20 7183 8750"),
    ]
    result = check_online(twochat)
    assert result.returncode == 1
    assert f"from_numbers.main ({MAIN}): 2Chat channel SMS1 is not enabled" in result.stderr
    assert f"from_numbers.uk ({UK}): 2Chat channel SMS2 cannot send SMS" in result.stderr
    result = check_online(twochat, key="wrong-key")
    assert result.returncode == 1
    assert "2Chat rejected TWOCHAT_API_KEY (HTTP 401)" in result.stderr
    assert "wrong-key" not in result.stderr + result.stdout
    result = check_online(twochat, key=None)
    assert result.returncode == 2 and "TWOCHAT_API_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
