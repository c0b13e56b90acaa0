"""A 2Chat answer that does not say what happened to an SMS is "outcome unknown" (shown with a
Retry button and never retried by itself), not a failure: 2Chat may have queued it."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from typing import Any

import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.payloads import button_click
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
_texts = itertools.count(1)


def ask(app: AppProcess, slack: SlackStandIn) -> None:
    """Run /sms to alice with a text no other test sends (a repeated body is a replay)."""
    text = f"alice is the db up? ({next(_texts)})"
    response = app.command(text, "U0ADMIN", CHANNEL, slack.response_url())
    assert response.status_code == 200 and not response.content


@pytest.fixture(scope="module")
def app(start_app: StartApp) -> AppProcess:
    """2Chat calls give up after 1 s here, so an unknown outcome settles in 3 s."""
    return start_app(TWOCHAT_CONNECT_TIMEOUT="0.5", TWOCHAT_READ_TIMEOUT="0.5")


def blocks_of(reply: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = reply.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "shown"),
    [
        (202, {"success": True}, "application/json", "returned no message id"),
        (200, {"success": True, "message_id": ""}, "application/json", "returned no message id"),
        (202, "queued", "text/plain", "HTTP 202 with a non-JSON body"),
        (202, "[1, 2]", "application/json", "unexpected JSON body"),
        (500, {"message": "boom"}, "application/json", "2Chat server error (HTTP 500): boom"),
        (500, "<html><body>Oops</body></html>", "text/html", "non-JSON body"),
        (502, {"message": "bad gateway"}, "application/json", "HTTP 502"),
    ],
)
def test_an_uncertain_answer_is_unknown_with_a_retry_button(
    app: AppProcess,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    status: int,
    body: object,
    content_type: str,
    shown: str,
) -> None:
    twochat.respond(
        status, body if isinstance(body, dict) else str(body), content_type=content_type
    )
    ask(app, slack)
    reply = slack.wait_for_thread_reply(CHANNEL)
    assert shown in reply["text"]
    retry = [b for b in blocks_of(reply) if b.get("block_id") == "retry"]
    assert retry and retry[0]["elements"][0]["action_id"] == "send_retry"
    assert len(twochat.sends) == 1  # never re-sent by itself


@pytest.mark.parametrize(
    ("status", "body"),
    [(402, {"error": True, "error_message": "no credits"}), (202, {"success": False})],
)
def test_a_definite_refusal_stays_a_failure(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, status: int, body: object
) -> None:
    twochat.respond(status, body if isinstance(body, dict) else str(body))
    ask(app, slack)
    reply = slack.wait_for_thread_reply(CHANNEL)
    assert "may or may not" not in reply["text"]
    assert not [b for b in blocks_of(reply) if b.get("block_id") == "retry"]
    assert len(twochat.sends) == 1


def test_a_retry_button_acts_once_for_the_attempt_it_was_offered_for(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """Three clicks at once and one after the retry's own uncertain outcome: one 2Chat call
    more, not two. The button asks Slack to confirm first: it may text twice."""
    twochat.respond(500, {"message": "boom"}, times=2)  # the send and its retry: unknown
    ask(app, slack)
    reply = slack.wait_for_thread_reply(CHANNEL)
    [retry] = [b for b in blocks_of(reply) if b.get("block_id") == "retry"]
    button = retry["elements"][0]
    assert "twice" in button["confirm"]["text"]["text"]
    wait_until_settled(app, slack, button["value"])
    barrier = threading.Barrier(3)

    def click() -> None:
        barrier.wait()
        click_retry(app, button["value"])

    clickers = [threading.Thread(target=click) for _ in range(3)]
    for clicker in clickers:
        clicker.start()
    for clicker in clickers:
        clicker.join(10)
    twochat.wait_for_sends(2)
    slack.wait_until(
        lambda: len(slack.thread_replies(CHANNEL)) == 2, 5, "the retry's outcome in the thread"
    )
    assert "may or may not have been sent" in str(slack.thread_replies(CHANNEL)[1]["text"])
    click_retry(app, button["value"])  # the first outcome's button, once more
    slack.wait_until(
        lambda: sum("already retried" in t for t in ephemeral_texts(slack)) == 3,
        5,
        "three clickers told it was already retried",
    )
    assert len(twochat.sends) == 2


def click_retry(app: AppProcess, value: str, user: str = "U0ADMIN") -> None:
    payload = button_click(user, CHANNEL, "send_retry", value, block_id="retry")
    assert app.interact(payload).status_code == 200


def wait_until_settled(
    app: AppProcess, slack: SlackStandIn, value: str, user: str = "U0ADMIN"
) -> None:
    """Click Retry (in C0GENERAL) while the outcome is still settling, check it is refused
    with a time, and wait for that time (a deadline the app states, not an ordering
    guess)."""
    before = len(ephemeral_texts(slack))
    click_retry(app, value, user)
    [told] = slack.wait_until(
        lambda: ephemeral_texts(slack)[before:], 5, "the clicker told to wait"
    )
    found = re.search(r"not retried yet: .* \(in (\d+) s\); the Retry button stays", told)
    assert found, told
    time.sleep(int(found[1]))


def ephemeral_texts(slack: SlackStandIn) -> list[str]:
    return [
        str(call.args.get("text"))
        for call in list(slack.calls)
        if call.method == "chat.postEphemeral"
    ]


def test_a_retry_first_asks_2chat_and_never_texts_a_send_it_accepted(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """The call times out (outcome unknown) but 2Chat accepted the SMS: a Retry finds it in
    the number's conversation, records it as sent and texts nobody again."""
    twochat.set_delay(1.5)  # past the app's 1 s read timeout; 2Chat still takes it
    ask(app, slack)
    reply = slack.wait_for_thread_reply(CHANNEL, timeout=10)
    [retry] = [b for b in blocks_of(reply) if b.get("block_id") == "retry"]
    twochat.wait_until(lambda: twochat.records[0].status == 202, 5, "2Chat's late 202")
    twochat.set_delay(0)
    wait_until_settled(app, slack, retry["elements"][0]["value"])
    click_retry(app, retry["elements"][0]["value"])
    slack.wait_until(
        lambda: any("2Chat had this SMS already" in t for t in ephemeral_texts(slack)),
        5,
        "the clicker told 2Chat had it",
    )
    outcome = slack.wait_until(
        lambda: [r for r in slack.thread_replies(CHANNEL) if "message_id" in str(r["text"])],
        5,
        "the send shown as sent in the thread",
    )
    assert str(twochat.records[0].body["to_number"]) in outcome[0]["text"]
    assert len(twochat.sends) == 1


def test_a_retry_waits_while_2chat_may_still_be_working_on_the_attempt(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """The call times out while 2Chat still works on it, and 2Chat accepts it a moment
    later. A Retry clicked before then is refused with the time it may be retried, and
    uses nothing up: the same button, clicked then, finds the SMS at 2Chat and texts
    nobody again."""
    twochat.set_delay(1.5)  # past the app's 0.5 s read timeout; 2Chat still takes it
    ask(app, slack)
    reply = slack.wait_for_thread_reply(CHANNEL, timeout=10)
    twochat.set_delay(0)
    [retry] = [b for b in blocks_of(reply) if b.get("block_id") == "retry"]
    value = retry["elements"][0]["value"]
    assert twochat.records[0].status is None  # 2Chat is still working on it
    wait_until_settled(app, slack, value)
    assert [r.status for r in twochat.records] == [202]
    click_retry(app, value)
    slack.wait_until(
        lambda: any("2Chat had this SMS already" in t for t in ephemeral_texts(slack)),
        5,
        "the clicker told 2Chat had it",
    )
    assert len(twochat.sends) == 1
