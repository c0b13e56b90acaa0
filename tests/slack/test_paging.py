"""Incident paging: @mention, message shortcut, auto_page and the paced fan-out, with the
app run for real against the Slack and 2Chat stand-ins. Events arrive as Slack sends them:
signed JSON bodies, retries with X-Slack-Retry-Num."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_policy
from bot.core.alerts import IGNORED_SUBTYPES, auto_page_text, message_text, prefill_text
from bot.core.page_command import PageCommand, parse_page
from bot.core.segments import analyze
from bot.slack.listeners.shortcuts import permalink
from tests.appproc import AppProcess
from tests.conftest import SHIPPED_CONFIG, StartApp, policy_file
from tests.fakes.signing import interaction_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

# The policies here raise requests_per_minute to 6000: so does the account.
pytestmark = pytest.mark.twochat_limit(6000)

INCIDENT = "C0INCIDENT"
GENERAL = "C0GENERAL"
ALICE, BOB = "+447700900123", "+447700900456"
POLICY = load_policy(SHIPPED_CONFIG)
_ids = itertools.count(100)


def new_ts() -> str:
    """A message ts no other test uses (the stand-in's own posts start at 1700000000)."""
    return f"1800000000.{next(_ids):06d}"


def new_event_id() -> str:
    return f"Ev{next(_ids):08d}"


# --- helpers: Slack's payload shapes ---------------------------------------------------------


def deliver(
    app: AppProcess, event: dict[str, Any], event_id: str | None = None, retry: int = 0
) -> str:
    """POST an Events API callback as Slack does; returns its event_id."""
    event_id = event_id or new_event_id()
    response = app.event(event, event_id, retry)
    assert response.status_code == 200, response.text
    return event_id


def mention(text: str, user: str = "U0DEV1", channel: str = INCIDENT) -> dict[str, Any]:
    ts = new_ts()
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }


def alert(text: str = "", channel: str = INCIDENT, **fields: Any) -> dict[str, Any]:
    """A monitoring bot's message: the alert in an attachment, as most integrations post."""
    ts = new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B0ALERTS",
        "username": "alertmanager",
        "text": "",
        "attachments": [{"fallback": text, "text": text, "color": "danger"}],
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "channel",
    }
    event.update(fields)
    return event


def user_message(text: str, channel: str = INCIDENT, **fields: Any) -> dict[str, Any]:
    ts = new_ts()
    return {
        "type": "message",
        "user": "U0SOMEONE",
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "channel",
        **fields,
    }


def ephemerals(slack: SlackStandIn, user: str) -> list[str]:
    return [
        str(call.args["text"])
        for call in list(slack.calls)
        if call.method == "chat.postEphemeral" and call.args.get("user") == user
    ]


def wait_ephemeral(slack: SlackStandIn, user: str) -> str:
    return slack.wait_until(
        lambda: ephemerals(slack, user) and ephemerals(slack, user)[-1],
        5,
        f"an ephemeral for {user}; calls: {slack.calls}",
    )


def final_reply(slack: SlackStandIn, channel: str, thread_ts: str, ids: int) -> dict[str, Any]:
    """The thread reply under ``thread_ts`` once it lists ``ids`` message ids."""
    return slack.wait_until(
        lambda: [
            reply
            for reply in slack.thread_replies(channel)
            if reply.get("thread_ts") == thread_ts and reply["text"].count("message_id") >= ids
        ],
        10,
        f"a reply under {thread_ts} with {ids} message ids; calls: {slack.calls}",
    )[-1]


def settle() -> None:
    """Give work that should NOT happen a moment to show up before asserting its absence."""
    time.sleep(0.3)


def views_opened(slack: SlackStandIn) -> list[dict[str, Any]]:
    views = [call.args["view"] for call in list(slack.calls) if call.method == "views.open"]
    return [json.loads(view) if isinstance(view, str) else view for view in views]


def shortcut_payload(message: dict[str, Any], user: str = "U0DEV1") -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "page_oncall",
        "action_ts": "1800000001.000001",
        "team": {"id": "T0TEAM", "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "channel": {"id": INCIDENT, "name": "incident"},
        "message_ts": message["ts"],
        "message": message,
        "response_url": "https://hooks.slack.com/app/T0TEAM/1/xyz",
        "token": "legacy-unused",
        "api_app_id": "A0APP",
    }


def submission(view: dict[str, Any], to: str, text: str, view_id: str, user: str) -> str:
    state = {
        "page_to": {"to": {"type": "plain_text_input", "value": to or None}},
        "page_text": {"text": {"type": "plain_text_input", "value": text or None}},
    }
    live = {**view, "id": view_id, "hash": "h1", "state": {"values": state}}
    return interaction_body(
        {
            "type": "view_submission",
            "team": {"id": "T0TEAM", "domain": "test"},
            "user": {"id": user, "team_id": "T0TEAM"},
            "api_app_id": "A0APP",
            "view": live,
        }
    )


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    """The shipped policy; a high 2Chat rate so this module's many pages are not paced."""
    tmp = tmp_path_factory.mktemp("paging")
    fast = "per_recipient_per_hour: 10000\n  requests_per_minute: 6000"
    return start_app(policy_file(tmp, {"per_recipient_per_hour: 10000": fast}))


# --- pure parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@UBOT> page db-oncall DB down", PageCommand(("db-oncall",), "DB down")),
        ("<@UBOT> Page carol hola", PageCommand(("carol",), "hola")),
        (
            "<@UBOT> page alice, bob db &amp; api down",
            PageCommand(("alice", "bob"), "db & api down"),
        ),
        ("<@UBOT> page alice,bobb x", PageCommand(("alice", "bobb"), "x")),
        ("<@UBOT> page +447700900999 call me", PageCommand(("+447700900999",), "call me")),
        ("<@UBOT> page <tel:07700900999|07700900999> hi", PageCommand(("07700900999",), "hi")),
        (
            "<@UBOT> page <tel:+447700900999|+44 7700 900999> DB down",
            PageCommand(("+447700900999",), "DB down"),
        ),
        ("<@UBOT> page +12125550123 DB down", PageCommand(("+12125550123",), "DB down")),
        (
            "<@UBOT> page <https://grafana.example/d/1|dashboard> is red",
            PageCommand((), "dashboard (https://grafana.example/d/1) is red"),
        ),
        ("<@UBOT> page replica lag is 5 min", PageCommand((), "replica lag is 5 min")),
        ("<@UBOT> page 500 errors on checkout", PageCommand((), "500 errors on checkout")),
        ("<@UBOT> page Down, everyone!", PageCommand((), "Down, everyone!")),
        ("<@UBOT> page", PageCommand((), "")),
        ("hey <@UBOT|sms-bridge> page db-oncall x", PageCommand(("db-oncall",), "x")),
        ("<@UBOT> what can you do?", None),
        ("<@UBOT>", None),
    ],
)
def test_parse_page(text: str, expected: PageCommand | None) -> None:
    assert parse_page(POLICY, text, "UBOT") == expected


def test_message_text_reads_integrations_and_blocks() -> None:
    assert message_text({"text": "a &lt;b&gt; <https://x.io|link>"}) == "a <b> link (https://x.io)"
    attached = {
        "text": "",
        "attachments": [
            {
                "fallback": "CRITICAL db",
                "title": "CRITICAL db",
                "fields": [{"title": "host", "value": "db-1"}],
            },
            {"from_url": "https://unfurl.example", "text": "an unfurl"},
        ],
    }
    assert message_text(attached) == "CRITICAL db\nhost: db-1"
    assert message_text({"attachments": [{"fallback": "only fallback"}]}) == "only fallback"
    rich = {
        "text": "",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "SEV1"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "api down"}},
        ],
    }
    assert message_text(rich) == "SEV1\napi down"


def test_only_new_matching_messages_by_others_auto_page() -> None:
    def pages(event: dict[str, Any]) -> bool:
        return auto_page_text(POLICY, event, "UBOT", "BBOT") is not None

    assert pages(alert("CRITICAL: db-1 down"))
    assert pages(user_message("sev1 declared"))
    assert not pages(user_message("all good"))
    assert not pages(alert("CRITICAL", channel=GENERAL))
    assert not pages(user_message("CRITICAL", thread_ts="1.0"))
    assert not pages(user_message("CRITICAL", user="UBOT"))
    assert not pages(alert("CRITICAL", bot_id="BBOT"))
    assert not pages(user_message("<@UBOT> page CRITICAL thing"))
    for subtype in IGNORED_SUBTYPES:
        assert not pages(user_message("CRITICAL", subtype=subtype))


def test_prefill_trims_to_the_limit_and_links_back_when_it_fits() -> None:
    link = permalink("test", INCIDENT, "1800000000.000100")
    assert link == "https://test.slack.com/archives/C0INCIDENT/p1800000000000100"
    assert permalink("test", INCIDENT, "1.2", "1.1").endswith("?thread_ts=1.1&cid=C0INCIDENT")
    assert permalink(None, INCIDENT, "1.2") == ""
    assert prefill_text("db “down”", link, 3) == f'db "down"\n{link}'
    long = prefill_text("x " * 400, link, 3)
    assert analyze(long).segments == 3 and long.endswith("...") and link not in long


# --- @bot page ----------------------------------------------------------------------------------


def test_mention_pages_a_group_into_the_mention_thread(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    event = mention("page db-oncall DB primary is down", channel=GENERAL)
    deliver(app, event)
    sends = twochat.wait_for_sends(2)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    assert {send["text"] for send in sends} == {"DB primary is down"}
    reply = final_reply(slack, GENERAL, event["ts"], 2)
    assert reply["text"].count(":white_check_mark:") == 2
    assert reply["text"].count("`SMO") == 2 and "2/2 queued" in reply["text"]
    # No separate request message: the mention is the thread's parent.
    assert [post for post in slack.posts(GENERAL) if not post.get("thread_ts")] == []
    settle()
    assert len(twochat.sends) == 2


def test_mention_without_target_pages_the_channel_group(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    event = mention("page replica lag is 5 min")
    deliver(app, event)
    sends = twochat.wait_for_sends(2)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    assert {send["text"] for send in sends} == {"replica lag is 5 min"}
    final_reply(slack, INCIDENT, event["ts"], 2)


def test_mention_by_a_non_sender_is_refused_privately(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    deliver(app, mention("page db-oncall let me in", user="U0STRANGER"))
    assert "not allowed to send SMS" in wait_ephemeral(slack, "U0STRANGER")
    settle()
    assert twochat.sends == [] and slack.posts() == []


@pytest.mark.parametrize(
    ("text", "channel", "expected"),
    [
        ("what can you do?", INCIDENT, "page [group|contact|number]"),
        ("page something broke", GENERAL, "no page group; say who"),
        ("page db-oncall", INCIDENT, "say what is happening"),
        ("page +34600000002 hola", INCIDENT, "you may not text +34600000002"),
        ("page db-oncall " + "x" * 460, INCIDENT, "4 SMS segments"),
    ],
)
def test_mention_problems_get_a_private_answer(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    text: str,
    channel: str,
    expected: str,
) -> None:
    deliver(app, mention(text, user="U0DEV2", channel=channel))
    assert expected in wait_ephemeral(slack, "U0DEV2")
    settle()
    assert twochat.sends == []


def test_the_same_mention_delivered_twice_pages_once(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    event = mention("page db-oncall retried delivery")
    event_id = deliver(app, event)
    deliver(app, event, event_id=event_id, retry=1)
    twochat.wait_for_sends(2)
    final_reply(slack, INCIDENT, event["ts"], 2)
    settle()
    assert sorted(send["to_number"] for send in twochat.sends) == [ALICE, BOB]
    assert len(slack.thread_replies(INCIDENT)) == 1


# --- the message shortcut ----------------------------------------------------------------------


def open_form(app: AppProcess, slack: SlackStandIn, message: dict[str, Any], user: str) -> dict:
    response = app.interact(shortcut_payload(message, user))
    assert response.status_code == 200
    return slack.wait_until(lambda: views_opened(slack), 5, f"views.open; got {slack.calls}")[-1]


def form_fields(view: dict[str, Any]) -> dict[str, str]:
    return {
        block["block_id"]: block["element"].get("initial_value", "")
        for block in view["blocks"]
        if block["type"] == "input"
    }


def test_shortcut_opens_a_prefilled_form_and_pages_into_the_message_thread(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    message = {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B0ALERTS",
        "text": "",
        "attachments": [{"fallback": "Disk 95% on db-1", "text": "Disk 95% on db-1"}],
        "ts": new_ts(),
    }
    view = open_form(app, slack, message, "U0DEV1")
    fields = form_fields(view)
    link = f"https://test.slack.com/archives/{INCIDENT}/p{message['ts'].replace('.', '')}"
    assert fields == {"page_to": "db-oncall", "page_text": f"Disk 95% on db-1\n{link}"}
    assert view["callback_id"] == "page_oncall_form"

    edited = "Disk 95% on db-1, please look"
    answer = app.post_signed(submission(view, "db-oncall", edited, "VPAGE1", "U0DEV1"))
    assert answer.status_code == 200 and not answer.content  # closes the form
    sends = twochat.wait_for_sends(2)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    assert {send["text"] for send in sends} == {edited}
    reply = final_reply(slack, INCIDENT, message["ts"], 2)
    assert "2/2 queued" in reply["text"]
    # A double submit of the same view pages nobody twice.
    app.post_signed(submission(view, "db-oncall", edited, "VPAGE1", "U0DEV1"))
    settle()
    assert len(twochat.sends) == 2


@pytest.mark.parametrize(
    ("to", "text", "block", "reason"),
    [
        ("nobody", "hello", "page_to", "'nobody' is not a contact"),
        ("+34600000002", "hello", "page_to", "you may not text +34600000002"),
        ("db-oncall", "", "page_text", "the message is empty"),
        ("db-oncall", "x" * 460, "page_text", "4 SMS segments"),
    ],
)
def test_invalid_form_fields_come_back_as_errors_and_nothing_is_sent(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    to: str,
    text: str,
    block: str,
    reason: str,
) -> None:
    view = open_form(app, slack, {"type": "message", "text": "hi", "ts": new_ts()}, "U0DEV2")
    answer = app.post_signed(submission(view, to, text, f"V{next(_ids)}", "U0DEV2"))
    body = answer.json()
    assert body["response_action"] == "errors" and list(body["errors"]) == [block]
    assert reason.lower() in body["errors"][block].lower()
    settle()
    assert twochat.sends == []


def test_shortcut_by_a_non_sender_opens_no_form(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app.interact(shortcut_payload({"type": "message", "text": "x", "ts": new_ts()}, "U0NOBODY"))
    assert "not allowed" in wait_ephemeral(slack, "U0NOBODY")
    assert views_opened(slack) == []


# --- auto_page ---------------------------------------------------------------------------------


def test_matching_alert_pages_once_per_window(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    first = alert("CRITICAL: db-1 replication broken")
    deliver(app, first)
    sends = twochat.wait_for_sends(2)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    assert {send["text"] for send in sends} == {"CRITICAL: db-1 replication broken"}
    final_reply(slack, INCIDENT, first["ts"], 2)

    # The identical alert again (new message, new event, other case/spacing): no page.
    deliver(app, alert("critical:  DB-1 replication broken"))
    # A different alert still pages: it is the marker that the one before was handled.
    marker = alert("CRITICAL: db-2 down")
    deliver(app, marker)
    final_reply(slack, INCIDENT, marker["ts"], 2)
    settle()
    assert len(twochat.sends) == 4
    assert {r["thread_ts"] for r in slack.thread_replies(INCIDENT)} == {first["ts"], marker["ts"]}


def test_edits_replies_other_messages_and_our_own_never_page(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    parent = new_ts()
    edit_ts = new_ts()
    for event in [
        user_message("all quiet, no CRITICALS (yet)"),
        user_message("SEV2 only"),
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": INCIDENT,
            "ts": new_ts(),
            "message": {"type": "message", "user": "U0SOMEONE", "text": "SEV1 now", "ts": edit_ts},
            "previous_message": {"type": "message", "text": "sev2", "ts": edit_ts},
            "event_ts": new_ts(),
        },
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": INCIDENT,
            "ts": new_ts(),
            "deleted_ts": edit_ts,
            "previous_message": {"text": "SEV1 now", "ts": edit_ts},
        },
        user_message("CRITICAL in a thread", thread_ts=parent),
        {**user_message("CRITICAL from the bridge itself", user="UBOT"), "bot_id": "BBOT"},
        alert("CRITICAL but in general", channel=GENERAL),
    ]:
        deliver(app, event)
    marker = user_message("SEV1: checkout down")  # a person's message pages too
    deliver(app, marker)
    final_reply(slack, INCIDENT, marker["ts"], 2)
    settle()
    assert len(twochat.sends) == 2
    assert {send["text"] for send in twochat.sends} == {"SEV1: checkout down"}


def test_the_same_alert_event_delivered_twice_pages_once(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    event = alert("CRITICAL: api 5xx above 20%")
    event_id = deliver(app, event)
    deliver(app, event, event_id=event_id, retry=1)
    deliver(app, event, event_id=event_id, retry=2)
    final_reply(slack, INCIDENT, event["ts"], 2)
    settle()
    assert sorted(send["to_number"] for send in twochat.sends) == [ALICE, BOB]


# --- fan-out -----------------------------------------------------------------------------------


def test_rate_limited_pages_are_retried_until_everyone_got_exactly_one(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    twochat.respond(429, {"error": True, "error_message": "Too many requests"}, times=3)
    event = mention("page db-oncall paged through a 429 storm")
    deliver(app, event)
    reply = final_reply(slack, INCIDENT, event["ts"], 2)
    assert reply["text"].count(":white_check_mark:") == 2 and ":x:" not in reply["text"]
    assert "*all sent*" in reply["text"]
    settle()
    accepted = Counter(r.body["to_number"] for r in twochat.records if r.status == 202)
    assert accepted == {ALICE: 1, BOB: 1}
    assert sum(1 for r in twochat.records if r.status == 429) == 3


def roster_config(tmp: Path, size: int, per_minute: int) -> Path:
    """The shipped policy plus a ``size``-member group and a 2Chat per-minute cap."""
    names = [f"m{i:02d}" for i in range(1, size + 1)]
    contacts = "".join(f'\n  {name}: "+4477009002{i:02d}"' for i, name in enumerate(names, 1))
    return policy_file(
        tmp,
        {
            'carol: "+34600000001"': f'carol: "+34600000001"{contacts}',
            "db-oncall: [alice, bob]": f"db-oncall: [alice, bob]\n  roster: [{', '.join(names)}]",
            "per_recipient_per_hour: 10000": (
                f"per_recipient_per_hour: 10000\n  requests_per_minute: {per_minute}"
            ),
        },
    )


def test_a_big_roster_is_paced_under_requests_per_minute(
    start_app: StartApp,
    tmp_path: Path,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    size, per_minute, burst = 12, 600, 5  # 10 a second after the pacer's burst of 5
    roster_app = start_app(roster_config(tmp_path, size, per_minute))
    event = mention("page roster all hands", user="U0ADMIN", channel=GENERAL)
    started = time.monotonic()
    deliver(roster_app, event)
    twochat.wait_for_sends(size)
    arrivals = [record.arrived for record in twochat.records]
    reply = final_reply(slack, GENERAL, event["ts"], size)
    assert time.monotonic() - started < 5
    assert f"{size}/{size} queued" in reply["text"]
    assert len({send["to_number"] for send in twochat.sends}) == size == len(twochat.sends)
    assert all(r.status == 202 for r in twochat.records)  # paced: 2Chat never said 429
    # After the burst each start waits for a token: 0.1 s apart at 600 a minute. Measured
    # from the first paced send: the burst's requests also pay for opening connections.
    # Arrivals jitter on a loaded host (a late first one shortens the next gap), so each
    # may come up to half a gap early; unpaced, all twelve would arrive within milliseconds.
    gap = 60 / per_minute
    for k in range(burst + 1, size):
        assert arrivals[k] - arrivals[burst] >= (k - burst) * gap - gap / 2, arrivals
    steady = (size - burst - 1) / (arrivals[-1] - arrivals[burst]) * 60
    assert steady <= per_minute * 1.1, f"{steady:.0f} sends a minute"


def test_sends_waiting_for_the_pacer_are_not_mistaken_for_crashed_ones(
    start_app: StartApp,
    tmp_path: Path,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
) -> None:
    # 12 members at 120 a minute take ~4 s, longer than the 3 s after which a "sending"
    # send counts as cut off by a crash: only sends actually being sent may be claimed.
    size = 12
    roster_app = start_app(
        roster_config(tmp_path, size, 120),
        TWOCHAT_CONNECT_TIMEOUT="0.5",
        TWOCHAT_READ_TIMEOUT="0.5",
        SWEEP_INTERVAL_SECONDS="0.2",
    )
    event = mention("page roster slow and steady", user="U0ADMIN", channel=GENERAL)
    deliver(roster_app, event)
    twochat.wait_for_sends(size, timeout=15)
    reply = final_reply(slack, GENERAL, event["ts"], size)
    assert f"{size}/{size} queued" in reply["text"]
    assert "outcome unknown" not in slack.all_text()
    assert len(twochat.sends) == size
