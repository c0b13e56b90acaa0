"""The Slack stand-in refuses what Slack refuses: Block Kit limits, chat.update pace, and
apps.connections.open with anything but an app-level token. Checked through slack-sdk's own
client, so the answers are ones the bridge's client really understands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack_server import BOT_TOKEN, SlackStandIn, Violation

APP_TOKEN = "xapp-1-A0LIMITS-1-limits-test"


@pytest.fixture(autouse=True)
def forget_refusals(slack: SlackStandIn) -> Iterator[None]:
    """These tests provoke refusals on purpose: a suite-wide check must not count them."""
    yield
    slack.reset()


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=5)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str) -> dict[str, Any]:
    return {"type": "button", "action_id": "b", "text": {"type": "plain_text", "text": text}}


def options(n: int) -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": f"o{i}"}, "value": str(i)} for i in range(n)]


def select(n_options: int = 0, n_groups: int = 0) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "static_select", "action_id": "s"}
    if n_groups:
        group = {"label": {"type": "plain_text", "text": "g"}, "options": options(1)}
        element["option_groups"] = [group] * n_groups
    else:
        element["options"] = options(n_options)
    return element


def text_input(initial: str) -> dict[str, Any]:
    element = {"type": "plain_text_input", "action_id": "t", "initial_value": initial}
    label = {"type": "plain_text", "text": "L"}
    return {"type": "input", "block_id": "i", "label": label, "element": element}


def modal(blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    title = {"type": "plain_text", "text": "Send an SMS"}
    return {"type": "modal", "callback_id": "c", "title": title, "blocks": blocks, **extra}


def refusal(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value


# --- messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "where"),
    [
        ([section("x")] * 51, "/blocks: 51 items, more than 50"),
        ([section("x" * 3001)], "/blocks/0/text/text: 3001 characters, more than 3000"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}], "fields/0"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}], "/fields: 11"),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3001}]}], "elem"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "more than 150"),
        ([{"type": "actions", "elements": [button("x" * 76)]}], "more than 75"),
        ([{"type": "actions", "elements": [button("x")] * 26}], "26 items, more than 25"),
        ([section("x", accessory=select(101))], "/accessory/options: 101 items"),
        ([section("x", block_id="b" * 256)], "/blocks/0/block_id"),
    ],
)
def test_messages_over_block_kit_limits_are_refused_and_recorded(
    slack: SlackStandIn, client: WebClient, blocks: list[dict[str, Any]], where: str
) -> None:
    error = refusal(lambda: client.chat_postMessage(channel="C1", text="t", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"
    assert error.response.status_code == 200
    [violation] = slack.limit_violations
    assert violation.where == "chat.postMessage" and violation.error == "invalid_blocks"
    assert any(where in problem for problem in violation.problems), violation.problems
    assert slack.posts() == []


def test_messages_at_the_limits_are_accepted(slack: SlackStandIn, client: WebClient) -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}
    blocks = [section("x" * 3000)] * 49 + [header]
    client.chat_postMessage(channel="C1", text="y" * 40_000, blocks=blocks)
    client.chat_update(
        channel="C1", ts="1.1", text="t", blocks=[section("x", accessory=select(100))]
    )
    client.chat_postEphemeral(channel="C1", user="U1", text="t", blocks=[section("x")])
    assert slack.limit_violations == []
    slack.assert_within_limits()
    assert len(slack.posts("C1")) == 1


def test_text_over_40000_characters_is_msg_too_long(slack: SlackStandIn, client: WebClient) -> None:
    error = refusal(lambda: client.chat_postMessage(channel="C1", text="x" * 40_001))
    assert error.response["error"] == "msg_too_long"
    assert slack.limit_violations == [
        Violation("chat.postMessage", "msg_too_long", ("/text: 40001 characters, more than 40000",))
    ]


@pytest.mark.parametrize("method", ["chat_update", "chat_postEphemeral"])
def test_updates_and_ephemerals_obey_the_same_limits(
    slack: SlackStandIn, client: WebClient, method: str
) -> None:
    call = getattr(client, method)
    error = refusal(
        lambda: call(channel="C1", ts="1.1", user="U1", text="t", blocks=[section("x")] * 51)
    )
    assert error.response["error"] == "invalid_blocks"
    assert [v.where for v in slack.limit_violations] == [method.replace("_", ".")]


def test_a_refused_response_url_post_never_arrives(slack: SlackStandIn) -> None:
    url = slack.response_url()
    too_many = httpx.post(url, json={"text": "t", "blocks": [section("x")] * 51})
    too_long = httpx.post(url, json={"text": "x" * 40_001})
    fine = httpx.post(url, json={"text": "fine"})
    # As an incoming webhook: HTTP 400 and the error as plain text.
    assert (too_many.status_code, too_many.text) == (400, "invalid_blocks")
    assert (too_long.status_code, too_long.text) == (400, "msg_too_long")
    assert fine.status_code == 200
    assert [r["text"] for r in slack.responses] == ["fine"]
    assert [v.where for v in slack.limit_violations] == ["response_url", "response_url"]


# --- views -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "where"),
    [
        (modal([section("x")] * 101), "/view/blocks: 101 items, more than 100"),
        (modal([section("x", accessory=select(101))]), "/accessory/options: 101 items"),
        (modal([section("x", accessory=select(n_groups=101))]), "/option_groups: 101 items"),
        (modal([text_input("x" * 3001)]), "/element/initial_value: 3001 characters"),
        (modal([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]), "150"),
        (modal([{"type": "actions", "elements": [button("x" * 76)]}]), "more than 75"),
        (modal([], title={"type": "plain_text", "text": "x" * 25}), "/view/title/text"),
        (modal([], private_metadata="x" * 3001), "/view/private_metadata"),
    ],
)
@pytest.mark.parametrize("method", ["views_open", "views_update", "views_push", "views_publish"])
def test_views_over_limits_are_invalid_arguments(
    slack: SlackStandIn, client: WebClient, view: dict[str, Any], where: str, method: str
) -> None:
    call = getattr(client, method)
    error = refusal(lambda: call(trigger_id="1.2", view_id="V1", user_id="U1", view=view))
    assert error.response["error"] == "invalid_arguments"
    [violation] = slack.limit_violations
    assert violation.where == method.replace("_", ".")
    assert any(where in problem for problem in violation.problems), violation.problems


def test_views_at_the_limits_are_accepted(slack: SlackStandIn, client: WebClient) -> None:
    view = modal(
        [section("x", accessory=select(100)), text_input("x" * 3000)] + [section("x")] * 98,
        private_metadata="m" * 3000,
    )
    opened = client.views_open(trigger_id="1.2", view=view)
    assert opened["view"]["id"] == "V0001"
    client.views_publish(user_id="U1", view={"type": "home", "blocks": [section("x")] * 100})
    slack.assert_within_limits()


# --- being loud about it -----------------------------------------------------------------


def test_assert_within_limits_names_every_refusal(slack: SlackStandIn, client: WebClient) -> None:
    refusal(lambda: client.chat_postMessage(channel="C1", text="t", blocks=[section("x" * 3001)]))
    refusal(lambda: client.views_open(trigger_id="1.2", view=modal([section("x")] * 101)))
    with pytest.raises(AssertionError) as failed:
        slack.assert_within_limits()
    message = str(failed.value)
    assert "chat.postMessage: invalid_blocks: /blocks/0/text/text: 3001 characters" in message
    assert "views.open: invalid_arguments: /view/blocks: 101 items" in message


def test_waiting_for_a_refused_post_says_why_it_never_came(
    slack: SlackStandIn, client: WebClient
) -> None:
    refusal(lambda: client.chat_postMessage(channel="C1", text="t", blocks=[section("x")] * 51))
    with pytest.raises(AssertionError, match=r"(?s)timed out.*Slack refused.*51 items"):
        slack.wait_for_posts(1, "C1", timeout=0.05)


def test_reset_forgets_violations(slack: SlackStandIn, client: WebClient) -> None:
    refusal(lambda: client.chat_postMessage(channel="C1", text="x" * 40_001))
    slack.reset()
    slack.assert_within_limits()


# --- chat.update pace --------------------------------------------------------------------


def test_update_times_are_kept_per_channel(slack: SlackStandIn, client: WebClient) -> None:
    for _ in range(3):
        client.chat_update(channel="C1", ts="1.1", text="t")
    client.chat_update(channel="C2", ts="1.2", text="t")
    assert [len(slack.update_times[c]) for c in ("C1", "C2")] == [3, 1]
    fast = slack.too_fast_updates()
    assert [channel for channel, _ in fast] == ["C1", "C1"]
    assert all(gap < 1.0 for _, gap in fast)
    assert slack.too_fast_updates("C2") == []


def test_enforced_update_pace_answers_ratelimited_with_retry_after(
    slack: SlackStandIn, client: WebClient
) -> None:
    slack.enforce_update_rate = True
    client.chat_update(channel="C1", ts="1.1", text="first")
    error = refusal(lambda: client.chat_update(channel="C1", ts="1.1", text="second"))
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "1"
    client.chat_update(channel="C2", ts="1.2", text="another channel is not held up")
    assert [len(slack.update_times[c]) for c in ("C1", "C2")] == [1, 1]
    assert slack.too_fast_updates() == []
    edits = [c.args["text"] for c in slack.calls if c.method == "chat.update" and c.args["_ok"]]
    assert edits == ["first", "another channel is not held up"]


# --- apps.connections.open ---------------------------------------------------------------


def test_connections_open_wants_an_app_level_token(slack: SlackStandIn) -> None:
    slack.socket_urls[APP_TOKEN] = "ws://127.0.0.1:1/link"
    try:
        opened = WebClient(base_url=slack.api_url).apps_connections_open(app_token=APP_TOKEN)
        assert opened["url"] == "ws://127.0.0.1:1/link"
        answers = {}
        for token in ("xapp-1-A0OTHER-1-wrong", BOT_TOKEN):
            error = refusal(
                lambda t=token: WebClient(base_url=slack.api_url).apps_connections_open(app_token=t)
            )
            answers[token] = error.response["error"]
        assert answers == {
            "xapp-1-A0OTHER-1-wrong": "invalid_auth",
            BOT_TOKEN: "not_allowed_token_type",
        }
        unauthenticated = httpx.post(slack.api_url + "apps.connections.open")
        assert json.loads(unauthenticated.text) == {"ok": False, "error": "not_authed"}
    finally:
        slack.socket_urls.pop(APP_TOKEN)
