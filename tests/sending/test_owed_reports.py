"""An outcome Slack refused to post (chat.postMessage answering 500 while a page ran) is
owed to the thread: the sweeper posts it there once Slack takes posts again."""

from __future__ import annotations

import time

from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import INCIDENT, deliver, mention


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
