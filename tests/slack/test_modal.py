"""The ``/sms`` compose modal: the pure view builders, then end to end against the stand-ins
with interaction payloads signed and shaped as Slack sends them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from bot.config import load_policy
from bot.core.directory import EMPTY_DIRECTORY, Directory
from bot.core.model import Policy
from bot.core.policy import Allow, NeedsApproval, Refuse
from bot.core.preview import preview_text
from bot.errors import BadPayload, NotASender
from bot.sending.ports import Origin
from bot.slack.ids import BlockId, CallbackId
from bot.slack.listeners.compose_modal import (
    ComposeMeta,
    ComposeValues,
    compose_view,
    decide_submission,
    field_errors,
    read_values,
    submit_compose,
)
from bot.slack.payloads import View
from tests.appproc import AppProcess
from tests.conftest import SHIPPED_CONFIG, StartApp
from tests.fakes.signing import interaction_body, slash_command_body
from tests.fakes.slack_server import Call, SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
POLICY = load_policy(SHIPPED_CONFIG)
META = ComposeMeta(CHANNEL, "https://hooks.slack.com/commands/T0/1/x")


# --- helpers: Slack's payload shapes ---------------------------------------------------------


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def preview_of(view: dict[str, Any]) -> str:
    return str(block(view, BlockId.COMPOSE_PREVIEW)["elements"][0]["text"])


def state_values(
    from_name: str | None = "main", to: str = "", text: str = "", cleanup: bool = False
) -> dict[str, Any]:
    """``view.state.values`` as Slack reports it (empty inputs are null)."""
    option = {"text": {"type": "plain_text", "text": from_name}, "value": from_name}
    checked = [{"text": {"type": "mrkdwn", "text": "*GSM-7 clean-up*"}, "value": "gsm7"}]
    return {
        "from": {
            "from_number": {
                "type": "static_select",
                "selected_option": option if from_name else None,
            }
        },
        "to": {"to_input": {"type": "plain_text_input", "value": to or None}},
        "text": {"message": {"type": "plain_text_input", "value": text or None}},
        "cleanup": {
            "gsm7_cleanup": {"type": "checkboxes", "selected_options": checked if cleanup else []}
        },
    }


def live_view(
    metadata: str, values: dict[str, Any], view_hash: str = "h1", view_id: str = "V0001"
) -> dict[str, Any]:
    """A view as it comes back in block_actions / view_submission payloads."""
    view = compose_view(POLICY, "U0ADMIN", ComposeValues(), META)
    return {
        **view,
        "id": view_id,
        "team_id": "T0TEAM",
        "app_id": "A0APP",
        "hash": view_hash,
        "private_metadata": metadata,
        "state": {"values": values},
    }


def envelope(kind: str, user: str, view: dict[str, Any], **extra: Any) -> str:
    payload = {
        "type": kind,
        "team": {"id": "T0TEAM", "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "legacy-unused",
        "view": view,
        "is_enterprise_install": False,
        **extra,
    }
    return interaction_body(payload)


def typing(user: str, view: dict[str, Any], text: str) -> str:
    action = {
        "type": "plain_text_input",
        "block_id": "text",
        "action_id": "message",
        "value": text,
        "action_ts": "1700000000.1",
    }
    container = {"type": "view", "view_id": view["id"]}
    return envelope("block_actions", user, view, actions=[action], container=container)


def metadata(slack: SlackStandIn, channel: str = CHANNEL, **extra: str) -> str:
    return json.dumps({"channel_id": channel, "response_url": slack.response_url(), **extra})


def view_arg(call: Call) -> dict[str, Any]:
    view = call.args["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def calls(slack: SlackStandIn, method: str) -> list[Call]:
    return [call for call in list(slack.calls) if call.method == method]


def wait_calls(slack: SlackStandIn, method: str, n: int = 1) -> list[Call]:
    return slack.wait_until(
        lambda: len(found := calls(slack, method)) >= n and found,
        5,
        f"{n} {method} calls; got {slack.calls}",
    )


def submit(
    app: AppProcess,
    slack: SlackStandIn,
    user: str,
    channel: str = CHANNEL,
    view_id: str | None = None,
    **fields: Any,
) -> dict[str, Any] | None:
    """Submit the modal (a new view unless ``view_id`` is given); the JSON answer, or None
    for the empty ack that closes it."""
    view_id = view_id or f"V{uuid.uuid4().hex[:10].upper()}"
    view = live_view(metadata(slack, channel), state_values(**fields), view_id=view_id)
    response = app.post_signed(envelope("view_submission", user, view))
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    """The shipped policy, with rate limits out of the way of this file's many sends."""
    config = tmp_path_factory.mktemp("modal") / "bridge.yaml"
    config.write_text(
        SHIPPED_CONFIG.read_text()
        .replace("per_sender_per_hour: 30", "per_sender_per_hour: 1000")
        .replace("per_recipient_per_hour: 10", "per_recipient_per_hour: 1000")
    )
    return start_app(config)


# --- pure builders -------------------------------------------------------------------------


def test_view_offers_only_the_users_from_numbers_default_first() -> None:
    dev = compose_view(POLICY, "U0DEV1", ComposeValues(to="carol"), META)
    from_element = block(dev, "from")["element"]
    assert [o["value"] for o in from_element["options"]] == ["main"]
    assert from_element["initial_option"]["value"] == "main"
    assert block(dev, "to")["element"]["initial_value"] == "carol"
    assert "db-oncall, carol, +447700900*" in block(dev, "to")["hint"]["text"]
    admin = compose_view(POLICY, "U0ADMIN", ComposeValues(), META)
    assert [o["value"] for o in block(admin, "from")["element"]["options"]] == ["main", "uk"]
    assert "Contacts: alice, bob, carol" in block(admin, "to")["hint"]["text"]


def test_view_wiring_for_live_preview_and_metadata() -> None:
    view = compose_view(POLICY, "U0ADMIN", ComposeValues(from_name="uk", cleanup=True), META)
    assert view["callback_id"] == CallbackId.COMPOSE
    assert block(view, "from")["element"]["initial_option"]["value"] == "uk"
    message = block(view, "text")
    assert message["dispatch_action"] is True
    assert message["element"]["multiline"] is True
    assert message["element"]["dispatch_action_config"] == {
        "trigger_actions_on": ["on_character_entered"]
    }
    cleanup = block(view, "cleanup")
    assert cleanup["dispatch_action"] is True and cleanup["optional"] is True
    assert cleanup["element"]["initial_options"] == cleanup["element"]["options"]
    assert ComposeMeta.from_json(view["private_metadata"]) == META


def test_forged_or_unknown_from_prefill_falls_back_to_the_default() -> None:
    view = compose_view(POLICY, "U0DEV1", ComposeValues(from_name="uk"), META)
    assert block(view, "from")["element"]["initial_option"]["value"] == "main"


def test_a_non_sender_gets_no_form() -> None:
    with pytest.raises(NotASender):
        compose_view(POLICY, "U0STRANGER", ComposeValues(), META)


@pytest.mark.parametrize(
    ("text", "cleanup", "expected"),
    [
        ("", False, ["Type a message"]),
        ("Hello there", False, ["*GSM-7* · 11 characters · 1 segment · 149 left"]),
        ("a€", False, ["*GSM-7* · 3 characters", "1 character of ^{}\\[~]|€ count double"]),
        (
            "“Hi”",
            False,
            [
                "*UCS-2* because of '“' (U+201C LEFT DOUBLE QUOTATION MARK)",
                "4 characters · 1 segment · 66 left",
                "Tick *GSM-7 clean-up* to send it as GSM-7",
            ],
        ),
        ("ok\u00a0😀", False, ["*UCS-2* because of U+00A0 NO-BREAK SPACE"]),
        (
            "“Hi” — ok…",
            True,
            ["*GSM-7* · 12 characters", "replaced '“'", "'—' (U+2014 EM DASH) → `-`", "`...`"],
        ),
        ("plain", True, ["*GSM-7*", "clean-up: nothing to replace"]),
        ("x" * 459, False, ["3 segments", ":warning: At the limit of 3 segments"]),
        ("x" * 460, False, ["4 segments", ":no_entry: 4 segments is over the limit of 3"]),
        ("“" + "x" * 100, False, ["2 segments", "as GSM-7 in 1 segment instead of 2"]),
    ],
)
def test_preview(text: str, cleanup: bool, expected: list[str]) -> None:
    shown = preview_text(text, cleanup, max_segments=3)
    for part in expected:
        assert part in shown


def test_read_values_round_trip_and_garbage() -> None:
    values = read_values(View.parse({"state": {"values": state_values("uk", "alice", "hi", True)}}))
    assert values == ComposeValues("uk", "alice", "hi", True)
    assert read_values(View.parse({"state": {"values": {}}})) == ComposeValues()
    for bad in [{}, {"state": []}, {"state": {"values": {"to": {"to_input": {"value": 3}}}}}]:
        with pytest.raises(BadPayload):
            read_values(View.parse(bad))


@pytest.mark.parametrize("raw", [None, "", "nope", "[]", '{"channel_id": 5}', "{}"])
def test_metadata_must_name_the_channel(raw: str | None) -> None:
    with pytest.raises(BadPayload):
        ComposeMeta.from_json(raw)


def test_metadata_drops_a_response_url_that_is_no_web_url() -> None:
    raw = json.dumps({"channel_id": "C1", "response_url": "javascript:alert(1)"})
    assert ComposeMeta.from_json(raw) == ComposeMeta("C1")


def test_submission_is_checked_with_the_policy_and_errors_map_to_blocks() -> None:
    forged = ComposeValues(from_name="uk", to="+442079460958", text="")
    decision = decide_submission(POLICY, "U0DEV1", forged)
    assert isinstance(decision, Refuse)
    errors = field_errors(decision)
    assert set(errors) == {"from", "to", "text"}
    assert errors["to"].startswith("You may not text")
    stranger = decide_submission(POLICY, "U0STRANGER", ComposeValues(to="alice", text="hi"))
    assert isinstance(stranger, Refuse)
    assert "not allowed to send" in field_errors(stranger)["to"]
    cleaned = decide_submission(
        POLICY, "U0ADMIN", ComposeValues(to="alice", text=" “Hi” ", cleanup=True)
    )
    assert not isinstance(cleaned, Refuse) and cleaned.plan.text == '"Hi"'


class StubBridge:
    """Just what submit_compose uses of Bridge: the policy and submit."""

    def __init__(self, answer: str | Exception | None) -> None:
        self.answer = answer
        self.submitted: list[Origin] = []

    @property
    def policy(self) -> Policy:
        return POLICY

    async def directory(self, *, patient: bool = False) -> Directory:
        return EMPTY_DIRECTORY  # POLICY names no Slack users or groups

    async def submit(self, decision: Allow | NeedsApproval, origin: Origin) -> str | None:
        self.submitted.append(origin)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def submission(meta: str = META.to_json(), user: str = "U0ADMIN") -> dict[str, Any]:
    view = live_view(meta, state_values(to="alice", text="hi"))
    return {"type": "view_submission", "user": {"id": user}, "view": view}


async def test_submit_compose_hands_over_with_the_modal_origin() -> None:
    bridge = StubBridge(None)
    assert await submit_compose(bridge, submission()) is None  # type: ignore[arg-type]
    assert bridge.submitted == [
        Origin(CHANNEL, "U0ADMIN", response_url=META.response_url, dedupe_key="view:V0001")
    ]


async def test_core_refusal_shows_on_the_message_field_without_emoji() -> None:
    bridge = StubBridge(":no_entry: Not sent: rate limit reached. Nothing was sent to 2Chat.")
    errors = await submit_compose(bridge, submission())  # type: ignore[arg-type]
    assert errors == {"text": "Not sent: rate limit reached. Nothing was sent to 2Chat."}


async def test_unexpected_error_still_answers_the_modal() -> None:
    bridge = StubBridge(RuntimeError("database exploded with secret"))
    errors = await submit_compose(bridge, submission())  # type: ignore[arg-type]
    assert errors is not None and "Internal error in sms-bridge (reference" in errors["text"]
    assert "secret" not in errors["text"]


# --- opening -------------------------------------------------------------------------------


def test_sms_with_recipient_opens_prefilled_modal_for_restricted_user(
    app: AppProcess, slack: SlackStandIn
) -> None:
    body = slash_command_body(
        "carol", "U0DEV1", CHANNEL, slack.response_url(), trigger_id="42.1.opens-this-modal"
    )
    response = app.post_signed(body)
    assert response.status_code == 200 and not response.content
    [call] = wait_calls(slack, "views.open")
    assert call.args["trigger_id"] == "42.1.opens-this-modal"
    view = view_arg(call)
    assert [o["value"] for o in block(view, "from")["element"]["options"]] == ["main"]
    assert block(view, "to")["element"]["initial_value"] == "carol"
    assert json.loads(view["private_metadata"]) == {
        "channel_id": CHANNEL,
        "response_url": slack.response_url(),
    }
    assert slack.responses == []


def test_sms_alone_opens_an_empty_modal(app: AppProcess, slack: SlackStandIn) -> None:
    app.command("", "U0ADMIN", CHANNEL, slack.response_url())
    view = view_arg(wait_calls(slack, "views.open")[0])
    assert "initial_value" not in block(view, "to")["element"]
    assert [o["value"] for o in block(view, "from")["element"]["options"]] == ["main", "uk"]


def test_the_ack_does_not_wait_for_the_form_to_open(app: AppProcess, slack: SlackStandIn) -> None:
    """Slack waits 3 s for the ack, and views.open may take as long: the form opens after it."""
    slack.slow("views.open", 2.0)
    began = time.monotonic()
    response = app.command("carol", "U0DEV1", CHANNEL, slack.response_url())
    assert response.status_code == 200
    assert time.monotonic() - began < 1.0
    assert calls(slack, "views.open") == []
    wait_calls(slack, "views.open")


def test_non_sender_is_told_privately_and_gets_no_modal(
    app: AppProcess, slack: SlackStandIn
) -> None:
    app.command("", "U0STRANGER", CHANNEL, slack.response_url())
    [answer] = slack.wait_for_response(1)
    assert answer["response_type"] == "ephemeral"
    assert "not allowed to send SMS" in answer["text"]
    assert calls(slack, "views.open") == []


def test_expired_trigger_is_reported_privately(app: AppProcess, slack: SlackStandIn) -> None:
    slack.fail("views.open", "expired_trigger_id")
    app.command("carol", "U0DEV1", CHANNEL, slack.response_url())
    [answer] = slack.wait_for_response(1)
    assert "could not be opened (expired_trigger_id)" in answer["text"]
    assert "/sms" in answer["text"]


# --- live preview --------------------------------------------------------------------------


def type_and_get_update(
    app: AppProcess, slack: SlackStandIn, text: str, cleanup: bool = False
) -> tuple[Call, dict[str, Any]]:
    view = live_view(metadata(slack), state_values(to="alice", text=text, cleanup=cleanup))
    response = app.post_signed(typing("U0ADMIN", view, text))
    assert response.status_code == 200 and not response.content
    [call] = wait_calls(slack, "views.update")
    return call, view_arg(call)


def test_typing_updates_preview_with_gsm7_counts_and_keeps_the_form(
    app: AppProcess, slack: SlackStandIn
) -> None:
    call, view = type_and_get_update(app, slack, "Database is down")
    assert call.args["view_id"] == "V0001" and call.args["hash"] == "h1"
    assert "*GSM-7* · 16 characters · 1 segment · 144 left" in preview_of(view)
    assert block(view, "to")["element"]["initial_value"] == "alice"
    assert block(view, "text")["element"]["action_id"] == "message"
    assert json.loads(view["private_metadata"])["channel_id"] == CHANNEL


def test_typing_a_smart_quote_shows_ucs2_and_names_it(app: AppProcess, slack: SlackStandIn) -> None:
    _, view = type_and_get_update(app, slack, "It\u2019s \u201cdown\u201d")
    assert "*UCS-2* because of '\u2019' (U+2019" in preview_of(view)
    assert "Tick *GSM-7 clean-up*" in preview_of(view)


def test_over_the_limit_warns(app: AppProcess, slack: SlackStandIn) -> None:
    _, view = type_and_get_update(app, slack, "y" * 500)
    assert "4 segments is over the limit of 3" in preview_of(view)


def test_cleanup_checkbox_previews_the_cleaned_text(app: AppProcess, slack: SlackStandIn) -> None:
    view = live_view(metadata(slack), state_values(to="alice", text="“Hi” — ok", cleanup=True))
    action = {
        "type": "checkboxes",
        "block_id": "cleanup",
        "action_id": "gsm7_cleanup",
        "selected_options": [{"value": "gsm7"}],
        "action_ts": "1700000000.2",
    }
    app.post_signed(envelope("block_actions", "U0ADMIN", view, actions=[action]))
    updated = view_arg(wait_calls(slack, "views.update")[0])
    assert "*GSM-7* · 9 characters" in preview_of(updated)
    assert "clean-up replaced '“'" in preview_of(updated)
    assert "initial_options" in block(updated, "cleanup")["element"]


def test_slack_accepts_the_form_and_its_preview_updates(
    app: AppProcess, slack: SlackStandIn
) -> None:
    """Slack refuses a whole view for one option description over 75 characters: the form
    (with the clean-up box ticked) must open and update, not be answered invalid_arguments."""
    app.command("alice", "U0ADMIN", CHANNEL, slack.response_url())
    opened = wait_calls(slack, "views.open")[0]
    _, updated = type_and_get_update(app, slack, "“Hi”", cleanup=True)
    assert opened.args["_ok"] and slack.limit_violations == []
    [option] = block(updated, "cleanup")["element"]["initial_options"]
    assert len(option["description"]["text"]) <= 75
    assert "UCS-2" in block(updated, "cleanup")["hint"]["text"]


@pytest.mark.parametrize("error", ["hash_conflict", "not_found"])
def test_failed_update_does_not_break_the_app(
    app: AppProcess, slack: SlackStandIn, error: str
) -> None:
    slack.fail("views.update", error)
    view = live_view(metadata(slack), state_values(to="alice", text="first"))
    assert app.post_signed(typing("U0ADMIN", view, "first")).status_code == 200
    wait_calls(slack, "views.update")
    view = live_view(metadata(slack), state_values(to="alice", text="second"), "h2")
    assert app.post_signed(typing("U0ADMIN", view, "second")).status_code == 200
    [failed, ok] = wait_calls(slack, "views.update", 2)
    assert not failed.args["_ok"] and ok.args["_ok"]
    assert "6 characters" in preview_of(view_arg(ok))
    assert "Traceback" not in app.log()


def test_actions_from_another_modal_are_ignored(app: AppProcess, slack: SlackStandIn) -> None:
    view = {**live_view(metadata(slack), state_values(text="x")), "callback_id": "other"}
    assert app.post_signed(typing("U0ADMIN", view, "x")).status_code == 200
    time.sleep(0.2)
    assert calls(slack, "views.update") == []


# --- submission ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "fields", "block_id", "reason"),
    [
        ("U0ADMIN", {"to": "nobody"}, "to", "'nobody' is not a contact, a group or a phone"),
        ("U0ADMIN", {"to": "+4412"}, "to", "'+4412' is not a valid phone number"),
        ("U0ADMIN", {"to": "+12125550123"}, "to", "does not support A2P messaging to US"),
        ("U0DEV1", {"to": "+442079460958"}, "to", "may not text +442079460958"),
        ("U0DEV1", {"to": ""}, "to", "say who to text"),
        ("U0STRANGER", {}, "to", "not allowed to send SMS from Slack"),
        ("U0DEV1", {"from_name": "uk"}, "from", "may not send from 'uk'"),
        ("U0ADMIN", {"from_name": "nope"}, "from", "'nope' is not one of the bridge's numbers"),
        ("U0DEV1", {"text": "  \n "}, "text", "message is empty"),
        ("U0DEV1", {"text": "x" * 460}, "text", "4 SMS segments (GSM-7); the limit is 3"),
    ],
)
def test_invalid_fields_come_back_as_field_errors_and_nothing_is_sent(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    user: str,
    fields: dict[str, str],
    block_id: str,
    reason: str,
) -> None:
    answer = submit(app, slack, user, **{"to": "carol", "text": "hello", **fields})
    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block_id]
    assert reason.lower() in answer["errors"][block_id].lower()
    assert not answer["errors"][block_id].startswith(":")
    # A valid submission afterwards is the only thing 2Chat and the channel ever see.
    assert submit(app, slack, "U0ADMIN", to="carol", text="marker") is None
    slack.wait_for_thread_reply(CHANNEL)
    assert [send["text"] for send in twochat.sends] == ["marker"]


def test_valid_submission_closes_modal_sends_per_recipient_and_replies_in_thread(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert submit(app, slack, "U0DEV1", to="db-oncall, carol", text="DB down") is None
    sends = twochat.wait_for_sends(3)
    assert sorted(send["to_number"] for send in sends) == [
        "+34600000001",
        "+447700900123",
        "+447700900456",
    ]
    assert {send["from_number"] for send in sends} == {"+17137157533"}
    # A multi-recipient reply may be edited in place as results arrive: wait for the last.
    reply = slack.wait_until(
        lambda: [r for r in slack.thread_replies(CHANNEL) if r["text"].count("message_id") == 3],
        5,
        f"a thread reply with 3 message ids; calls: {slack.calls}",
    )[-1]
    [request] = [post for post in slack.posts(CHANNEL) if not post.get("thread_ts")]
    assert reply["thread_ts"] == request["_ts"]
    assert "<@U0DEV1>" in request["text"] and "DB down" in request["text"]
    assert reply["text"].count(":white_check_mark:") == 3
    time.sleep(0.1)
    assert len(twochat.sends) == 3


def test_one_view_submitted_six_times_sends_once_and_a_corrected_resubmit_sends(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    refused = submit(app, slack, "U0DEV1", view_id="V0SAME", to="alice", text="x" * 1000)
    assert refused is not None and refused["response_action"] == "errors"
    for _ in range(6):
        assert submit(app, slack, "U0DEV1", view_id="V0SAME", to="alice", text="once") is None
    twochat.wait_for_sends(1)
    time.sleep(0.3)
    assert [send["text"] for send in twochat.sends] == ["once"]


def test_submission_needing_approval_closes_modal_and_asks_an_approver(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert submit(app, slack, "U0INTERN", to="alice", text="may I?") is None
    [request] = slack.wait_for_posts(1, channel="C0APPROVALS")
    assert "may I?" in json.dumps(request)
    time.sleep(0.1)
    assert twochat.sends == []


def test_cleanup_applies_to_what_is_sent(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    answer = submit(
        app, slack, "U0ADMIN", from_name="uk", to="alice", text="“Hi” — ok…", cleanup=True
    )
    assert answer is None
    [sent] = twochat.wait_for_sends(1)
    assert sent["text"] == '"Hi" - ok...'
    assert sent["from_number"] == "+442071838750"


def test_outcome_reaches_requester_privately_when_bot_cannot_post(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    slack.channel_errors["C0PRIVATE"] = "not_in_channel"
    assert submit(app, slack, "U0DEV1", channel="C0PRIVATE", to="alice", text="hi") is None
    [answer] = slack.wait_for_response(1)
    assert answer["response_type"] == "ephemeral"
    assert "message_id `SMO" in answer["text"]
    assert len(twochat.sends) == 1


@pytest.mark.parametrize(
    ("view_patch", "user", "block_id", "reason"),
    [
        ({"private_metadata": "not json"}, "U0ADMIN", "text", "lost track of the channel"),
        ({"private_metadata": None}, "U0ADMIN", "text", "lost track of the channel"),
        ({"state": "broken"}, "U0ADMIN", "text", "without its fields"),
        ({"state": {"values": {"to": {"to_input": 7}}}}, "U0ADMIN", "to", "garbled"),
        ({}, "", "text", "did not say who submitted"),
    ],
)
def test_malformed_submission_gets_a_polite_field_error(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    view_patch: dict[str, Any],
    user: str,
    block_id: str,
    reason: str,
) -> None:
    view = {**live_view(metadata(slack), state_values(to="alice", text="hi")), **view_patch}
    if user:
        response = app.post_signed(envelope("view_submission", user, view))
    else:  # no user at all in the payload
        payload = {"type": "view_submission", "team": {"id": "T0TEAM"}, "view": view}
        response = app.post_signed(interaction_body(payload))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert reason in answer["errors"][block_id]
    assert twochat.sends == []
