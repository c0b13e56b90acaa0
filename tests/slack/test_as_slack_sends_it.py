"""Text as Slack really sends it, end to end: the app runs as deployed (``python -m bot``)
and gets signed commands and events in both of Slack's escaping modes.

With "Escape channels, users, and links" on (the shipped manifest), ``/sms @alice hi``
arrives as ``<@U0ALICE|alice> hi``; with it off, as the plain text ``@alice hi``. Mentions,
channels and links must reach the phone as a person reads them in Slack.
"""

from __future__ import annotations

import html
import time
from typing import Any

import pytest
import yaml

from tests.appproc import AppProcess
from tests.conftest import ROOT, StartApp, policy_file
from tests.fakes.signing import signed_headers, slash_command_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_paging import INCIDENT, alert, deliver, final_reply, settle

CHANNEL = "C0GENERAL"
ALICE = "+447700900123"
LINKED = {'alice: "+447700900123"': 'alice: {number: "+447700900123", slack: U0ALICE}'}
DANA = {"display_name": "Dana", "real_name": "Dana Scully"}


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    return start_app(policy_file(tmp_path_factory.mktemp("fidelity"), LINKED))


def sms(app: AppProcess, slack: SlackStandIn, text: str, user: str = "U0ADMIN") -> str:
    """``/sms`` with ``text`` exactly as Slack sends it (& < > of typed text escaped by the
    caller); the ack's text, "" for an accepted send."""
    response = app.command(text, user, CHANNEL, slack.response_url())
    assert response.status_code == 200, response.text
    return str(response.json()["text"]) if response.content else ""


def sent(app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, text: str) -> str:
    """``/sms`` that must be accepted: the SMS text 2Chat got, once its outcome is posted
    (so nothing of this send arrives during the next test)."""
    assert sms(app, slack, text) == ""
    [send] = twochat.wait_for_sends(1)
    slack.wait_for_thread_reply(CHANNEL)
    return str(send["text"])


def users_info_calls(slack: SlackStandIn) -> list[dict[str, Any]]:
    return [call.args for call in list(slack.calls) if call.method == "users.info"]


# --- escaping: the manifest and both modes ---------------------------------------------------


def test_the_shipped_manifest_asks_slack_to_escape_mentions() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/sms" and command["should_escape"] is True


def test_an_escaped_mention_texts_the_linked_person(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sent(app, slack, twochat, "<@U0ALICE|alice> db is back") == "db is back"
    assert twochat.sends[0]["to_number"] == ALICE


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("@alice db is back", "`@alice` arrived as plain text, not as a Slack mention, so"),
        ("bob, @alice db is back", "`@alice` arrived as plain text"),
        ("@Alice Smith db is back", "`@Alice` arrived as plain text"),
        ("#general db is back", "`#general` is a channel, not a person"),
        ("<#C0GENERAL|general> db is back", "`#general` is a channel, not a person"),
        ("<!here> db is back", "`@here` is a channel, not a person"),
    ],
)
def test_a_name_or_channel_as_recipient_is_explained_privately_and_texts_nobody(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn, typed: str, says: str
) -> None:
    """With escaping off Slack sends a name, which could be anyone's: never a recipient;
    nor is a channel, escaped or not."""
    answer = sms(app, slack, typed)
    assert says in answer, answer
    settle()
    assert twochat.sends == []
    assert slack.posts() == []


def test_unescaped_text_after_the_recipient_is_sent_as_typed(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    typed = "alice ask @bob in #ops: https://status.example.com/x"
    assert sent(app, slack, twochat, typed) == "ask @bob in #ops: https://status.example.com/x"


# --- Slack markup never reaches the phone ----------------------------------------------------


def test_mentions_and_channels_read_as_slack_shows_them(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    slack.profiles["U0OTHER"] = DANA
    typed = "alice <!channel> <!here> <!everyone> see <#C0INC42|inc-42>, ask <@U0OTHER>"
    assert sent(app, slack, twochat, typed) == "@channel @here @everyone see #inc-42, ask @Dana"


def test_names_are_looked_up_once_and_cached(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    slack.profiles["U0CACHED"] = {"display_name": "", "real_name": "Fox Mulder"}
    for n in (1, 2):
        assert sms(app, slack, f"alice {n}: <@U0CACHED> is on it") == ""
        assert twochat.wait_for_sends(n)[-1]["text"] == f"{n}: @Fox Mulder is on it"
        slack.wait_until(lambda n=n: len(slack.thread_replies(CHANNEL)) == n, 5, "outcomes")
    assert [call["user"] for call in users_info_calls(slack)] == ["U0CACHED"]


def test_an_unknown_user_reads_as_someone_never_an_id(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    assert sent(app, slack, twochat, "alice ask <@U0NOBODY>") == "ask @someone"


def test_a_slow_name_lookup_does_not_hold_up_the_answer(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """Slack wants the command answered within 3 seconds; a name not found by then reads
    "@someone"."""
    slack.slow("users.info", 2.5)
    slack.profiles["U0SLOW"] = DANA
    began = time.monotonic()
    assert sms(app, slack, "alice ask <@U0SLOW>") == ""
    assert time.monotonic() - began < 2.5
    assert twochat.wait_for_sends(1)[0]["text"] == "ask @someone"
    slack.wait_for_thread_reply(CHANNEL)


def test_an_auto_paged_alert_reads_as_slack_shows_it(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    slack.profiles["U0OTHER"] = DANA
    event = alert("CRITICAL <!here> db down, <@U0OTHER> on it in <#C0INC42|inc-42>")
    deliver(app, event)
    final_reply(slack, INCIDENT, event["ts"], 2)
    texts = {send["text"] for send in twochat.sends}
    assert texts == {"CRITICAL @here db down, @Dana on it in #inc-42"}


# --- links ------------------------------------------------------------------------------------


def test_a_link_labelled_with_its_own_address_keeps_https(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    link = "<https://status.example.com/x|status.example.com/x>"
    typed = f"alice see {link} &amp; {html.escape('<ok>')}"
    assert sent(app, slack, twochat, typed) == "see https://status.example.com/x & <ok>"


# --- requests Slack did not sign ---------------------------------------------------------


def test_a_bad_signature_is_logged_as_refused_with_why_never_the_body(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    """The body carries a response_url, which can post into the channel for 30 minutes."""
    secret_url = slack.response_url("do-not-log-me")
    body = slash_command_body("alice forged", "U0ADMIN", CHANNEL, secret_url)
    attempts = {
        "does not match": signed_headers(body, secret="not-the-secret"),
        "more than 5 minutes": signed_headers(body, timestamp=int(time.time()) - 600),
        "no X-Slack-Signature": {"Content-Type": "application/x-www-form-urlencoded"},
        "not a number": {**signed_headers(body), "X-Slack-Request-Timestamp": "soon"},
    }
    for why, headers in attempts.items():
        assert app.post_signed(body, headers).status_code == 401
        assert why in app.wait_for_log(why).split("Slack request refused: ")[-1]
    log = app.log()
    assert log.count("Slack request refused") >= len(attempts)
    assert "do-not-log-me" not in log and "forged" not in log
    assert "Invalid request signature" not in log  # Bolt's line, with the whole body
    settle()
    assert twochat.sends == [] and slack.responses == []
