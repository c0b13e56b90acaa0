"""Every rule of the Slack stand-in's limit table, one by one: one character or item over
the limit is refused as Slack refuses it (its error, and ``response_metadata.messages``
naming the JSON pointer), and exactly at the limit is accepted. Sent through slack-sdk's own
client, so the answers are ones the bridge's client really reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack_server import BOT_TOKEN, RULES, Rule, SlackStandIn

Call = tuple[str, dict[str, Any], str]  # client method, its arguments, the object's path


@pytest.fixture(autouse=True)
def forget_refusals(slack: SlackStandIn) -> Iterator[None]:
    """These tests provoke refusals on purpose: a suite-wide check must not count them."""
    yield
    slack.reset()


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=5)


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


OPTION = {"text": plain("o"), "value": "v"}
BUTTON = {"type": "button", "action_id": "b", "text": plain("b")}
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
CONFIRM = {"title": plain("t"), "text": plain("t"), "confirm": plain("y"), "deny": plain("n")}


def in_message(block: dict[str, Any], inner: str = "") -> Call:
    args = {"channel": "C1", "text": "t", "blocks": [block]}
    return "chat_postMessage", args, "/blocks/0" + inner


def in_view(element: dict[str, Any], inner: str = "") -> Call:
    block = {"type": "input", "block_id": "i", "label": plain("L"), "element": element}
    view = {"type": "modal", "title": plain("T"), "blocks": [block]}
    return "views_open", {"trigger_id": "1.2", "view": view}, "/view/blocks/0/element" + inner


def select(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "action_id": "s", "options": [OPTION], **extra}


# Where an object of each kind is sent, with its fields set to ``o``.
PLACES: dict[str, Callable[[dict[str, Any]], Call]] = {
    "message": lambda o: ("chat_postMessage", {"channel": "C1", "text": "t", **o}, ""),
    "view": lambda o: (
        "views_open",
        {"trigger_id": "1.2", "view": {"type": "modal", "title": plain("T"), "blocks": [], **o}},
        "/view",
    ),
    "text": lambda o: in_message(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "x", **o}]}, "/elements/0"
    ),
    "block": lambda o: in_message({**SECTION, **o}),
    "section": lambda o: in_message({**SECTION, **o}),
    "field": lambda o: in_message(
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "x", **o}]}, "/fields/0"
    ),
    "header": lambda o: in_message({"type": "header", "text": plain("h"), **o}),
    "context": lambda o: in_message({"type": "context", "elements": [plain("x")], **o}),
    "actions": lambda o: in_message({"type": "actions", "elements": [BUTTON], **o}),
    "input": lambda o: (
        "views_open",
        {
            "trigger_id": "1.2",
            "view": {
                "type": "modal",
                "title": plain("T"),
                "blocks": [
                    {
                        "type": "input",
                        "label": plain("L"),
                        "element": {"type": "plain_text_input", "action_id": "t"},
                        **o,
                    }
                ],
            },
        },
        "/view/blocks/0",
    ),
    "element": lambda o: in_view(select("static_select", **o)),
    "button": lambda o: in_message(
        {"type": "actions", "elements": [{**BUTTON, **o}]}, "/elements/0"
    ),
    "static_select": lambda o: in_view(select("static_select", **o)),
    "multi_static_select": lambda o: in_view(select("multi_static_select", **o)),
    "checkboxes": lambda o: in_view(select("checkboxes", **o)),
    "radio_buttons": lambda o: in_view(select("radio_buttons", **o)),
    "plain_text_input": lambda o: in_view({"type": "plain_text_input", "action_id": "t", **o}),
    "option": lambda o: in_view(select("static_select", options=[{**OPTION, **o}]), "/options/0"),
    "option_group": lambda o: in_view(
        {
            "type": "static_select",
            "action_id": "s",
            "option_groups": [{"label": plain("g"), "options": [OPTION], **o}],
        },
        "/option_groups/0",
    ),
    "confirm": lambda o: in_message(
        {"type": "actions", "elements": [{**BUTTON, "confirm": {**CONFIRM, **o}}]},
        "/elements/0/confirm",
    ),
}
# One valid item of each list a rule counts.
ITEMS: dict[str, Any] = {
    "blocks": SECTION,
    "fields": {"type": "mrkdwn", "text": "x"},
    "options": OPTION,
    "option_groups": {"label": plain("g"), "options": [OPTION]},
}
# Fields that are plain strings rather than text objects.
STRINGS = frozenset(
    {"block_id", "action_id", "value", "url", "private_metadata", "callback_id", "initial_value"}
)

# The max_length given to an input whose initial value is checked against it.
SIBLING_LIMIT = 5


def sized(rule: Rule, n: int) -> tuple[dict[str, Any], str]:
    """The fields that make ``rule``'s object hold ``n`` characters or items, and the path
    below the object that Slack names when that is too many."""
    if isinstance(rule.most, str):  # within a sibling field: an input's own max_length
        return {rule.most: SIBLING_LIMIT, rule.field: "x" * n}, f"/{rule.field}"
    if rule.field == "elements":
        item = BUTTON if rule.kind == "actions" else plain("x")
        return {rule.field: [item] * n}, f"/{rule.field}"
    if rule.field in ITEMS:
        return {rule.field: [ITEMS[rule.field]] * n}, f"/{rule.field}"
    if rule.field == "max_length":
        return {rule.field: n}, f"/{rule.field}"
    if rule.field in STRINGS or rule.kind in ("message", "text"):
        return {rule.field: "x" * n}, f"/{rule.field}"
    return {rule.field: plain("x" * n)}, f"/{rule.field}/text"


def limit_of(rule: Rule) -> int:
    return rule.most if isinstance(rule.most, int) else SIBLING_LIMIT


def send(client: WebClient, rule: Rule, n: int) -> tuple[str, str]:
    fields, below = sized(rule, n)
    method, args, path = PLACES[rule.kind](fields)
    getattr(client, method)(**args)
    return method, path + below


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.kind}.{r.field}<={r.most}")
def test_one_over_the_limit_is_refused_as_slack_refuses_it(
    slack: SlackStandIn, client: WebClient, rule: Rule
) -> None:
    with pytest.raises(SlackApiError) as raised:
        send(client, rule, limit_of(rule) + 1)
    answer = raised.value.response
    method = PLACES[rule.kind]({})[0]
    expected = rule.error or ("invalid_arguments" if method == "views_open" else "invalid_blocks")
    assert (answer.status_code, answer["ok"], answer["error"]) == (200, False, expected)
    _, path = sized(rule, 1)
    pointer = PLACES[rule.kind]({})[2] + path
    messages = answer["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages
    [violation] = slack.limit_violations
    assert violation.where == method.replace("_", ".") and violation.error == expected


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.kind}.{r.field}<={r.most}")
def test_exactly_at_the_limit_is_accepted(
    slack: SlackStandIn, client: WebClient, rule: Rule
) -> None:
    send(client, rule, limit_of(rule))
    slack.assert_within_limits()


def test_every_rule_cites_the_page_that_documents_it() -> None:
    assert all(rule.ref.startswith("https://api.slack.com/") for rule in RULES)
    assert len({(rule.kind, rule.field, rule.most) for rule in RULES}) == len(RULES)
