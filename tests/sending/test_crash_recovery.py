"""A process killed with kill -9 in the middle of a paced page: another process finishes it.
Sends never claimed are sent (they cannot have reached 2Chat), claimed ones are "unknown",
nobody gets two texts, and the live reply in the thread ends with every recipient's outcome.
And the reverse: a process that is alive and sending is never taken over."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.sending.drip import DrippingTwoChat
from tests.slack.test_paging import GENERAL, deliver, mention, roster_config

# Short timeouts make a lapsed lease or claim (connect + read + 2 s) 3 s old.
FAST = {
    "TWOCHAT_CONNECT_TIMEOUT": "0.5",
    "TWOCHAT_READ_TIMEOUT": "0.5",
    "SWEEP_INTERVAL_SECONDS": "0.2",
}


def outcomes(text: str) -> int:
    """How many recipients an outcome text gives a result for."""
    return text.count("message_id") + text.count("outcome unknown")


def test_a_page_killed_mid_way_is_finished_by_the_next_process(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    size = 20  # at 120 a minute after a burst of 5: about 7.5 s
    config = roster_config(tmp_path, size, 120)
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    doomed = start_app(config, DATABASE_URL=database, **FAST)
    event = mention("page roster kill me halfway", user="U0ADMIN", channel=GENERAL)
    deliver(doomed, event)
    twochat.wait_for_sends(7, timeout=10)
    doomed.kill()
    sent_before = len(twochat.sends)
    assert sent_before < size
    progress = next(
        post
        for post in slack.posts(GENERAL)
        if str(post.get("text", "")).startswith(":hourglass_flowing_sand: Sending to 20")
    )

    revived = start_app(config, DATABASE_URL=database, **FAST)
    final = slack.wait_until(
        lambda: (
            outcomes(str(slack.latest(progress).get("text", ""))) >= size and slack.latest(progress)
        ),
        20,
        f"the live reply finished with {size} outcomes; calls: {slack.calls}",
    )
    text = str(final["text"])
    assert not text.startswith(":hourglass")
    received = Counter(send["to_number"] for send in twochat.sends)
    assert max(received.values()) == 1, received  # nobody texted twice
    sent, unknown = text.count("message_id"), text.count("outcome unknown")
    assert sent + unknown == size
    assert unknown <= 1  # the fake answers at once: at most the one in flight at the kill
    assert sent <= len(received) <= size  # an unknown one may or may not have reached 2Chat
    assert revived.terminate() == 0
    assert len(received) > sent_before  # the rest were sent after the restart


def test_a_live_slow_send_is_never_taken_for_a_crashed_one(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn
) -> None:
    # Each byte comes within the read timeout, the whole answer takes ~5 s: longer than the
    # 3 s after which the sweeper takes a "sending" send for one a crash left behind.
    with DrippingTwoChat(gap=0.1) as dripping:
        app = start_app(
            TWOCHAT_API_URL=dripping.url,
            TWOCHAT_CONNECT_TIMEOUT="0.5",
            TWOCHAT_READ_TIMEOUT="0.5",
            SWEEP_INTERVAL_SECONDS="0.2",
        )
        app.command("alice hello slowly", "U0ADMIN", GENERAL, slack.response_url())
        reply = slack.wait_for_thread_reply(GENERAL, timeout=10)
        text = str(reply["text"])
        assert "the bridge stopped while sending" not in text
        assert "did not finish answering within 1 s" in text
        assert "may or may not have been sent" in text
        assert dripping.sends == 1
        thread = [
            call.args
            for call in list(slack.calls)
            if call.args.get("thread_ts") == reply["thread_ts"]
            or call.args.get("ts") == reply["_ts"]
        ]
        assert "the bridge stopped while sending" not in str(thread)
