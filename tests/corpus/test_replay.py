"""Slack's own payloads, replayed through the app as deployed: each file of this directory
(see README.md) is signed as Slack signs it and posted to ``python -m bot``, and what the app
then did (an SMS, a form, an answer, or nothing) is checked."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.signing import signed_headers
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import final_reply, settle, wait_ephemeral

CORPUS = Path(__file__).parent
ALICE, BOB = "+447700900123", "+447700900456"
LINKED = {'alice: "+447700900123"': 'alice: {number: "+447700900123", slack: U0ALICE}'}
_fresh = itertools.count(1)


def corpus(name: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads((CORPUS / f"{name}.json").read_text())
    return entry


def adapted(body: Any, changes: dict[str, Any]) -> Any:
    """``body`` with each dotted path set (``actions.0.value``); a path must exist up to its
    last key, so a change never lands beside what it meant to replace."""
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return body


def with_response_url(fields: dict[str, Any], slack: SlackStandIn) -> dict[str, Any]:
    if "response_url" in fields:
        fields["response_url"] = slack.response_url("corpus")
    return fields


def delivery(
    name: str, slack: SlackStandIn, event_id: str | None = None
) -> tuple[str, dict[str, str]]:
    """The raw body and headers of the corpus entry ``name``, signed now."""
    entry = corpus(name)
    changes = entry.get("adapt", {})
    kind = entry["as"]
    if kind == "command":
        fields = with_response_url(dict(parse_qsl(entry["body"])), slack)
        body = urlencode(adapted(fields, changes))
        content_type = "application/x-www-form-urlencoded"
    elif kind == "interaction":
        payload = with_response_url(adapted(entry["body"], changes), slack)
        body = urlencode({"payload": json.dumps(payload)})
        content_type = "application/x-www-form-urlencoded"
    else:
        event = adapted(entry["body"], changes)
        if event.get("type") not in ("event_callback", "url_verification"):
            event = {
                "type": "event_callback",
                "team_id": "T0TEAM",
                "api_app_id": "A0APP",
                "event": event,
                "event_time": 1515449522,
            }
        if event["type"] == "event_callback":
            event["event_id"] = event_id or f"Ev{next(_fresh):08d}corpus"
        body = json.dumps(event)
        content_type = "application/json"
    headers = {**signed_headers(body), "Content-Type": content_type, **entry.get("headers", {})}
    return body, headers


def replay(
    app: AppProcess, slack: SlackStandIn, name: str, event_id: str | None = None
) -> httpx.Response:
    body, headers = delivery(name, slack, event_id)
    response = app.post_signed(body, headers)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    return start_app(policy_file(tmp_path_factory.mktemp("corpus"), LINKED))


def calls(slack: SlackStandIn, method: str) -> list[dict[str, Any]]:
    return [call.args for call in list(slack.calls) if call.method == method and call.args["_ok"]]


def wait_call(slack: SlackStandIn, method: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = slack.wait_until(
        lambda: calls(slack, method), 5, f"{method}; calls: {slack.calls}"
    )
    return found[-1]


def view_of(args: dict[str, Any]) -> dict[str, Any]:
    view = args["view"]
    parsed: dict[str, Any] = json.loads(view) if isinstance(view, str) else view
    return parsed


# --- slash commands ----------------------------------------------------------------------------


def test_an_escaped_slash_command_texts_the_mentioned_person(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    response = replay(app, slack, "slash_command_escaped")
    assert not response.content or response.json().get("text", "") == ""
    [send] = twochat.wait_for_sends(1)
    assert (send["to_number"], send["text"]) == (ALICE, "db is back")
    slack.wait_for_thread_reply("C111")


def test_an_unescaped_slash_command_is_explained_and_texts_nobody(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    answer = replay(app, slack, "slash_command_unescaped").json()
    assert answer["response_type"] == "ephemeral"
    assert "`@alice` arrived as plain text, not as a Slack mention" in answer["text"]
    settle()
    assert twochat.sends == [] and slack.posts() == []


# --- interactions -------------------------------------------------------------------------------


def test_block_actions_on_an_unknown_request_answers_the_clicker(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    replay(app, slack, "block_actions")
    assert wait_ephemeral(slack, "U0ADMIN")
    settle()
    assert twochat.sends == [] and slack.posts() == []


def test_block_suggestion_lists_the_matching_from_numbers(
    app: AppProcess, slack: SlackStandIn
) -> None:
    options = replay(app, slack, "block_suggestion").json()["options"]
    assert [option["value"] for option in options] == ["uk"]


def test_view_submission_with_every_element_sends_the_cleaned_text(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    response = replay(app, slack, "view_submission")
    assert not response.content, response.text  # no field errors: the form closes
    sends = twochat.wait_for_sends(2)
    assert sorted(send["to_number"] for send in sends) == [ALICE, BOB]
    assert {send["text"] for send in sends} == {'"db" is back\nall clear'}
    assert {send["from_number"] for send in sends} == {"+17137157533"}


def test_message_action_opens_the_page_form_with_the_message_as_slack_shows_it(
    app: AppProcess, slack: SlackStandIn
) -> None:
    slack.profiles["W222"] = {"display_name": "Dana"}
    replay(app, slack, "message_action")
    view = view_of(wait_call(slack, "views.open"))
    assert view["callback_id"] == "page_oncall_form"
    [text_block] = [b for b in view["blocks"] if b.get("block_id") == "page_text"]
    assert text_block["element"]["initial_value"].startswith("@Dana test")


# --- events ---------------------------------------------------------------------------------------


def test_app_mention_pages_the_group_into_its_thread(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    replay(app, slack, "app_mention")
    final_reply(slack, "C0INCIDENT", corpus("app_mention")["body"]["event"]["ts"], 2)
    assert sorted(send["to_number"] for send in twochat.sends) == [ALICE, BOB]
    assert {send["text"] for send in twochat.sends} == {"db is down"}


def test_a_retried_event_pages_once(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    entry = corpus("app_mention_retry")
    first = adapted(entry["body"], entry["adapt"])
    event_id = f"Ev{next(_fresh):08d}retried"
    response = app.event(first["event"], event_id)  # the first delivery, not acknowledged in time
    assert response.status_code == 200
    replay(app, slack, "app_mention_retry", event_id)  # Slack's retry: X-Slack-Retry-Num: 1
    final_reply(slack, "C0INCIDENT", first["event"]["ts"], 2)
    settle()
    assert len(twochat.sends) == 2
    assert len(slack.thread_replies("C0INCIDENT")) == 1


@pytest.mark.parametrize(
    ("name", "pages"),
    [
        ("message_bot_message", True),
        ("message_file_share", True),
        ("message_changed", False),
        ("message_thread_broadcast", False),
    ],
)
def test_message_events_auto_page_only_for_new_top_level_messages(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, name: str, pages: bool
) -> None:
    entry = corpus(name)
    replay(app, slack, name)
    if pages:
        final_reply(slack, "C0INCIDENT", entry["body"]["event"]["ts"], 2)
        assert {send["text"] for send in twochat.sends} == {entry["adapt"]["event.text"]}
    else:
        settle()
        assert twochat.sends == [] and slack.posts() == []


def test_reaction_added_on_an_ordinary_message_does_nothing(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    replay(app, slack, "reaction_added")
    settle()
    assert twochat.sends == [] and slack.posts() == [] and slack.responses == []


def test_app_home_opened_publishes_the_home_tab(app: AppProcess, slack: SlackStandIn) -> None:
    replay(app, slack, "app_home_opened")
    published = wait_call(slack, "views.publish")
    assert published["user_id"] == "U0ADMIN" and view_of(published)["type"] == "home"


def test_url_verification_answers_the_challenge(app: AppProcess, slack: SlackStandIn) -> None:
    challenge = corpus("url_verification")["body"]["challenge"]
    assert replay(app, slack, "url_verification").json() == {"challenge": challenge}


def test_every_corpus_file_names_its_source_and_has_a_replay() -> None:
    names = {path.stem for path in CORPUS.glob("*.json")}
    replayed = {
        "slash_command_escaped",
        "slash_command_unescaped",
        "block_actions",
        "block_suggestion",
        "view_submission",
        "message_action",
        "app_mention",
        "app_mention_retry",
        "message_bot_message",
        "message_file_share",
        "message_changed",
        "message_thread_broadcast",
        "reaction_added",
        "app_home_opened",
        "url_verification",
    }
    assert names == replayed
    for name in names:
        assert corpus(name)["source"].startswith("https://"), name
