"""Hostile or broken input from Slack's side never sends twice and never answers 500.

Replayed signed requests, events of the wrong shape, NUL bytes and lone surrogates all
arrive as Slack would deliver them: signed bodies posted to the real app (or, for the replay
guard, to the real HTTP endpoint in front of a real Bolt app and a real store).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.slack.transport.replays import REPLAY_WINDOW, ReplayGuard, take_signature
from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.fakes.signing import SIGNING_SECRET, event_body, signed_headers, slash_command_body
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

CHANNEL = "C0GENERAL"
INCIDENT = "C0INCIDENT"
ALICE = "+447700900123"


@pytest.fixture(scope="module")
def app(start_app: StartApp) -> AppProcess:
    return start_app()


def settle() -> None:
    """Give work that should NOT happen a moment to show up before asserting its absence."""
    time.sleep(0.5)


def signed_event(event: object, event_id: str) -> tuple[str, dict[str, str]]:
    body = event_body(event, event_id)
    return body, {**signed_headers(body), "Content-Type": "application/json"}


# --- replayed signed requests --------------------------------------------------------------


def test_a_replayed_signed_request_is_answered_and_ignored_by_every_process(
    start_app: StartApp, tmp_path: Path, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    shared = f"sqlite:///{tmp_path / 'bridge.db'}"
    first, second = start_app(DATABASE_URL=shared), start_app(DATABASE_URL=shared)
    body = slash_command_body("alice replayed hello", "U0DEV1", CHANNEL, slack.response_url())
    headers = signed_headers(body)
    # The same signed request three times: this process remembers it, and the other finds
    # its signature claimed with the request it recorded.
    for app in (first, first, second):
        response = app.post_signed(body, headers)
        assert response.status_code == 200, response.text
    [sent] = twochat.wait_for_sends(1)
    assert sent["text"] == "replayed hello"
    settle()
    assert len(twochat.sends) == 1
    # The same words signed afresh are a new request (someone sending it again).
    fresh = signed_headers(body, timestamp=int(headers["X-Slack-Request-Timestamp"]) - 1)
    assert second.post_signed(body, fresh).status_code == 200
    assert len(twochat.wait_for_sends(2)) == 2
    # A forged signature is refused, and is not remembered.
    forged = {**headers, "X-Slack-Signature": "v0=" + "0" * 64}
    assert second.post_signed("text=x", forged).status_code == 401


def test_the_replay_guard_remembers_only_verified_requests_for_its_window() -> None:
    now = [1000.0]
    guard = ReplayGuard(SIGNING_SECRET, clock=lambda: now[0], capacity=3)
    body = slash_command_body("alice hi", "U0DEV1", CHANNEL, "https://hooks.invalid/x")
    headers = signed_headers(body)

    def replayed(raw: str, sent: dict[str, str]) -> tuple[bool, object]:
        with guard.serving(raw, sent) as seen:
            return seen, take_signature()

    seen, claim = replayed(body, headers)
    assert not seen and claim is not None and claim[1] == REPLAY_WINDOW
    assert replayed(body, headers) == (True, None)
    forged = {**headers, "X-Slack-Signature": "v0=" + "0" * 64}
    assert replayed(body, forged) == (False, None)  # Bolt refuses it; nothing to claim
    assert replayed(body, forged) == (False, None)  # and it was not remembered
    now[0] += REPLAY_WINDOW.total_seconds() + 1
    seen, claim = replayed(body, headers)  # past the window Slack refuses it anyway
    assert not seen and claim is not None
    for i in range(5):  # capacity bounds memory: the oldest are forgotten first
        replayed(body, signed_headers(body, timestamp=int(time.time()) - 10 - i))
    seen, claim = replayed(body, headers)
    assert not seen and claim is not None


def test_a_signature_is_claimed_by_the_first_request_recorded_only() -> None:
    guard = ReplayGuard(SIGNING_SECRET)
    body = slash_command_body("alice hi", "U0DEV1", CHANNEL, "https://hooks.invalid/y")
    with guard.serving(body, signed_headers(body)) as seen:
        assert not seen
        first, second = take_signature(), take_signature()
    assert first is not None and first[0].startswith("slack-signature:")
    assert second is None
    assert take_signature() is None  # outside a signed request there is none


# --- events of the wrong shape ------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        [],
        "app_mention",
        None,
        42,
        {},
        {"type": 5},
        {"type": ["app_mention"]},
        {"type": "app_mention", "text": 5, "user": "U0DEV1", "ts": "1.1", "channel": INCIDENT},
        {"type": "app_mention", "text": "<@UBOT> page x", "user": ["U0DEV1"], "channel": {}},
        {"type": "app_mention"},
        {"type": "message", "text": {"a": 1}, "channel": INCIDENT, "ts": "1.2"},
        {"type": "message", "channel": 7, "ts": 8, "user": None, "text": "CRITICAL"},
        {"type": "message", "attachments": "CRITICAL", "channel": INCIDENT, "ts": "1.3"},
        {"type": "message", "attachments": [5, None], "blocks": {}, "channel": INCIDENT},
    ],
)
def test_a_signed_event_of_the_wrong_shape_never_gets_a_500(
    app: AppProcess, twochat: TwoChatStandIn, event: object
) -> None:
    body, headers = signed_event(event, f"EvShape{abs(hash(repr(event)))}")
    response = app.post_signed(body, headers)
    assert response.status_code in (200, 400), response.text
    settle()
    assert twochat.sends == []


@pytest.mark.parametrize(
    "action_id",
    ["approval_approve", "approval_reject", "send_retry", "ladder_ack", "ladder_stop"],
)
def test_a_button_click_without_a_value_is_still_acked(
    app: AppProcess, twochat: TwoChatStandIn, action_id: str
) -> None:
    """The listener acks, then finds the click unusable: Slack still gets that ack, not the
    500 of the failure after it (which would show the clicker an error)."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ADMIN"},
        "team": {"id": "T0TEAM"},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "channel_id": CHANNEL},
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button"}],
    }
    response = app.interact(payload)
    assert response.status_code == 200, response.text
    assert not response.content
    settle()
    assert twochat.sends == []


# --- NUL bytes and lone surrogates ------------------------------------------------------------


def test_nul_and_control_characters_are_stripped_from_an_sms(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    response = app.command(
        "alice db\x00 down\x07\tnow\x7f", "U0DEV1", CHANNEL, slack.response_url()
    )
    assert response.status_code == 200, response.text
    [sent] = twochat.wait_for_sends(1)
    assert sent["to_number"] == ALICE
    assert sent["text"] == "db down\tnow"


def test_a_nul_in_an_sms_is_sent_cleaned_on_postgres(
    start_app: StartApp, postgres_url: str, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app(DATABASE_URL=postgres_url)
    response = app.command("alice\x00 db\x00 down", "U0DEV1", CHANNEL, slack.response_url())
    assert response.status_code == 200, response.text
    [sent] = twochat.wait_for_sends(1)
    assert (sent["to_number"], sent["text"]) == (ALICE, "db down")


def test_a_lone_surrogate_in_a_mention_still_pages(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    ts = "1800000000.900001"
    event = {
        "type": "app_mention",
        "user": "U0DEV1",
        "text": "<@UBOT> page db-oncall DB \ud800down\x00",
        "ts": ts,
        "channel": CHANNEL,
        "event_ts": ts,
    }
    body, headers = signed_event(event, "EvSurrogate1")
    assert "\\ud800" in body  # JSON escapes, as Slack would send a broken pair
    response = app.post_signed(body, headers)
    assert response.status_code == 200, response.text
    sends = twochat.wait_for_sends(2)
    assert {send["text"] for send in sends} == {"DB \ufffddown"}


def test_a_lone_surrogate_in_an_alert_still_auto_pages(
    app: AppProcess, twochat: TwoChatStandIn
) -> None:
    ts = "1800000000.900002"
    event = {
        "type": "message",
        "user": "U0SOMEONE",
        "text": "CRITICAL: disk \udfff full",
        "ts": ts,
        "channel": INCIDENT,
        "event_ts": ts,
        "channel_type": "channel",
    }
    body, headers = signed_event(event, "EvSurrogate2")
    response = app.post_signed(body, headers)
    assert response.status_code == 200, response.text
    sends = twochat.wait_for_sends(2)
    assert {send["text"] for send in sends} == {"CRITICAL: disk \ufffd full"}


def test_the_deployed_app_ignores_a_replayed_sms(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    body = slash_command_body("alice replay me", "U0DEV1", CHANNEL, slack.response_url())
    headers = signed_headers(body)
    assert app.post_signed(body, headers).status_code == 200
    twochat.wait_for_sends(1)
    replay = app.post_signed(body, headers)
    assert replay.status_code == 200 and not replay.content
    settle()
    assert len(twochat.sends) == 1
    fresh = signed_headers(body, timestamp=int(time.time()) + 1)
    assert app.post_signed(body, fresh).status_code == 200
    assert len(twochat.wait_for_sends(2)) == 2
