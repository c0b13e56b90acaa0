"""An outcome Slack refused to post (chat.postMessage answering 500 while a page ran) is
owed to the thread: the sweeper posts it there once Slack takes posts again."""

from __future__ import annotations

import time

from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import GENERAL, INCIDENT, deliver, mention


def test_an_outcome_slack_refused_reaches_the_thread_later(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app(SWEEP_INTERVAL_SECONDS="0.2")
    slack.fail("chat.postMessage", "internal_error", status=500, times=1000)
    event = mention("page db-oncall the database is on fire")
    deliver(app, event)
    twochat.wait_for_sends(2)
    slack.wait_until(
        lambda: [
            call
            for call in list(slack.calls)
            if call.method == "chat.postMessage"
            and call.args.get("thread_ts") == event["ts"]
            and str(call.args.get("text", "")).count("message_id") == 2
        ],
        10,
        "the refused outcome post",
    )
    assert not slack.thread_replies(INCIDENT)
    slack.failures.clear()  # Slack is back
    reply = slack.wait_for_thread_reply(INCIDENT, timeout=10)
    assert reply["thread_ts"] == event["ts"]
    assert reply["text"].count("message_id") == 2
    time.sleep(0.6)  # three more sweeps: none may post it again
    assert len(slack.thread_replies(INCIDENT)) == 1
    assert len(twochat.sends) == 2


def test_a_request_message_slack_refused_is_posted_with_its_outcome_later(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """/sms while Slack answers 503 to every post: the text goes out, the requester hears
    privately, and once Slack is back the channel gets the request message with the
    outcome in its thread, once."""
    app = start_app(SWEEP_INTERVAL_SECONDS="0.2")
    slack.fail("chat.postMessage", "service_unavailable", status=503, times=1000)
    response = app.command("alice are you there", "U0ADMIN", GENERAL, slack.response_url())
    assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(1)
    slack.wait_for_response(1)  # the requester heard privately
    assert slack.posts(GENERAL) == []
    slack.failures.clear()  # Slack is back
    reply = slack.wait_for_thread_reply(GENERAL, timeout=10)
    [request] = [p for p in slack.posts(GENERAL) if not p.get("thread_ts")]
    assert "texting alice" in request["text"] and "> are you there" in request["text"]
    assert reply["thread_ts"] == request["_ts"] and "message_id" in reply["text"]
    time.sleep(0.6)  # three more sweeps: none may post either again
    assert len(slack.posts(GENERAL)) == 2
    assert len(twochat.sends) == 1


def test_a_request_message_slack_refuses_for_good_is_not_tried_again(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app(SWEEP_INTERVAL_SECONDS="0.2")
    slack.fail("chat.postMessage", "not_in_channel", times=1000)
    response = app.command("alice hello from outside", "U0ADMIN", GENERAL, slack.response_url())
    assert response.status_code == 200 and not response.content
    twochat.wait_for_sends(1)
    slack.wait_for_response(1)
    tries = len([c for c in list(slack.calls) if c.method == "chat.postMessage"])
    time.sleep(0.6)  # three sweeps
    assert len([c for c in list(slack.calls) if c.method == "chat.postMessage"]) == tries
