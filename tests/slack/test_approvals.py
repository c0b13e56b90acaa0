"""Approve-before-send, exactly once, and crash recovery — the app runs for real against the
stand-ins, on SQLite and on the real Postgres."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.store import open_store
from tests.appproc import AppProcess, hermetic_env
from tests.conftest import POSTGRES, SHIPPED_CONFIG, StartApp, policy_file
from tests.escalation.ladder_app import eventually
from tests.fakes.payloads import reason_submission
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.sending.test_uncertain_answers import wait_until_settled

APPROVALS = "C0APPROVALS"
CHANNEL = "C0GENERAL"


def click(app: AppProcess, user: str, action_id: str, value: str, channel: str = APPROVALS) -> int:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel},
        "actions": [
            {"action_id": action_id, "block_id": "approval", "value": value, "type": "button"}
        ],
    }
    return app.interact(payload).status_code


def request_approval(app: AppProcess, slack: SlackStandIn, user: str = "U0INTERN") -> str:
    """/sms by a sender who needs approval; returns the request id from the Approve button."""
    response = app.command("alice please call me", user, CHANNEL, slack.response_url())
    assert response.status_code == 200 and not response.content
    [post] = slack.wait_for_posts(1, channel=APPROVALS)
    blocks = json.loads(post["blocks"]) if isinstance(post["blocks"], str) else post["blocks"]
    buttons = [e for block in blocks if block["type"] == "actions" for e in block["elements"]]
    assert [b["action_id"] for b in buttons] == ["approval_approve", "approval_reject"]
    assert "alice (+447700900123)" in post["text"] and f"<@{user}>" in post["text"]
    # The requester's note comes after the approval message: wait, so that it cannot land
    # in the next test's Slack.
    slack.wait_until(lambda: slack.responses, 5, "the note to the requester")
    return str(buttons[0]["value"])


def updates(slack: SlackStandIn) -> list[dict[str, Any]]:
    return [call.args for call in list(slack.calls) if call.method == "chat.update"]


def ephemerals(slack: SlackStandIn, user: str) -> list[str]:
    return [
        str(call.args["text"])
        for call in list(slack.calls)
        if call.method == "chat.postEphemeral" and call.args.get("user") == user
    ]


@pytest.fixture(scope="module")
def app(start_app: StartApp, tmp_path_factory: pytest.TempPathFactory) -> AppProcess:
    tmp = tmp_path_factory.mktemp("approvals")
    return start_app(policy_file(tmp, {"users: [U0INTERN]": "users: [U0INTERN, U0LEAD]"}))


def test_request_waits_for_approval_and_nothing_is_sent(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    request_approval(app, slack)
    [told] = slack.wait_for_response(1)
    assert "needs an approver's OK" in told["text"]
    assert twochat.sends == []


def test_non_approver_and_self_approval_are_refused_privately(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    request_id = request_approval(app, slack, user="U0LEAD")
    assert click(app, "U0DEV1", "approval_approve", request_id) == 200
    assert click(app, "U0LEAD", "approval_approve", request_id) == 200
    slack.wait_until(lambda: ephemerals(slack, "U0LEAD"), 5, "a refusal for U0LEAD")
    assert ephemerals(slack, "U0DEV1") == [":no_entry: only approvers can approve or reject texts"]
    assert ephemerals(slack, "U0LEAD") == [":no_entry: you cannot approve or reject your own text"]
    assert twochat.sends == [] and updates(slack) == []


def test_eight_concurrent_approvals_send_exactly_once(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    request_id = request_approval(app, slack)
    barrier = threading.Barrier(8)

    def approve() -> None:
        barrier.wait()
        click(app, "U0ADMIN", "approval_approve", request_id)

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reply = slack.wait_for_thread_reply(APPROVALS)
    assert "message_id `SMO" in reply["text"]
    slack.wait_until(lambda: len(ephemerals(slack, "U0ADMIN")) == 7, 5, "7 'already' notes")
    assert len(twochat.sends) == 1
    [update] = updates(slack)
    assert "Approved by <@U0ADMIN>" in update["text"]
    assert "approval_approve" not in json.dumps(update.get("blocks"))
    assert all("already approved by <@U0ADMIN>" in note for note in ephemerals(slack, "U0ADMIN"))
    told = slack.wait_until(lambda: len(slack.responses) >= 3 and slack.responses, 5, "3 notes")
    assert "Approved by <@U0ADMIN>" in told[1]["text"]
    assert "message_id `SMO" in told[2]["text"]


def test_reject_with_reason_then_approve_sends_nothing(
    app: AppProcess, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    request_id = request_approval(app, slack)
    assert click(app, "U0LEAD", "approval_reject", request_id) == 200
    opened = slack.wait_until(
        lambda: [c.args for c in list(slack.calls) if c.method == "views.open"], 5, "views.open"
    )
    response = app.interact(reason_submission(opened[0]["view"], "U0LEAD", "wrong"))
    assert response.status_code == 200 and not response.content
    [update] = updates(slack)
    assert "Rejected by <@U0LEAD>: wrong" in update["text"]
    assert click(app, "U0ADMIN", "approval_approve", request_id) == 200
    note = slack.wait_until(lambda: ephemerals(slack, "U0ADMIN"), 5, "refusal")
    assert note == [":no_entry: this text was already rejected by <@U0LEAD>"]
    assert twochat.sends == []
    assert any("Nothing was sent" in r["text"] for r in slack.wait_for_response(2))


def test_forged_button_value_is_refused(app: AppProcess, slack: SlackStandIn) -> None:
    assert click(app, "U0ADMIN", "approval_approve", "no-such-request") == 200
    note = slack.wait_until(lambda: ephemerals(slack, "U0ADMIN"), 5, "refusal")
    assert note == [":no_entry: this approval request is unknown to the bridge"]


def test_expired_request_loses_its_buttons(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    expiring = start_app(
        policy_file(tmp_path, {"expire_after: 30m": "expire_after: 1s"}),
        SWEEP_INTERVAL_SECONDS="0.2",
    )
    request_id = request_approval(expiring, slack)
    update = slack.wait_until(lambda: updates(slack), 5, "the expiry update")[0]
    assert "Expired" in update["text"]
    assert "approval_approve" not in json.dumps(update.get("blocks"))
    click(expiring, "U0ADMIN", "approval_approve", request_id)
    note = slack.wait_until(lambda: ephemerals(slack, "U0ADMIN"), 5, "refusal")
    assert note == [":no_entry: this text was already expired"]
    assert twochat.sends == []


def test_pending_approval_survives_a_restart(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    first = start_app(DATABASE_URL=database)
    request_id = request_approval(first, slack)
    assert first.terminate() == 0
    second = start_app(DATABASE_URL=database)
    click(second, "U0ADMIN", "approval_approve", request_id)
    assert "message_id `SMO" in slack.wait_for_thread_reply(APPROVALS)["text"]
    assert len(twochat.sends) == 1


def test_a_click_before_the_approval_message_is_known_still_closes_it(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """The bridge learns the approval message's ts only when Slack answers its post; an
    approver who clicks before that (a busy host, a slow Slack) used to approve and send,
    but the message kept its buttons: the decision found no message to close."""
    database = tmp_path / "early.db"
    app = start_app(DATABASE_URL=f"sqlite:///{database}")
    slack.slow("chat.postMessage", 3)  # the approval message is on its way meanwhile
    app.command("alice please call me", "U0INTERN", CHANNEL, slack.response_url())
    store = open_store(f"sqlite:///{database}")
    try:
        [request] = eventually(lambda: store.recent_requests("U0INTERN"), 5, "the request")
    finally:
        store.close()
    click(app, "U0ADMIN", "approval_approve", request.id)
    twochat.wait_for_sends(1)
    [update] = slack.wait_until(lambda: updates(slack), 10, "the approval message closed")
    assert update["ts"] == slack.posts(APPROVALS)[0]["_ts"]
    assert "Approved by <@U0ADMIN>" in update["text"] and "approval_approve" not in str(update)
    app.terminate()


def test_two_processes_on_postgres_send_one_sms_for_one_click(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, postgres_url: str
) -> None:
    one = start_app(DATABASE_URL=postgres_url)
    two = start_app(DATABASE_URL=postgres_url)
    request_id = request_approval(one, slack)
    barrier = threading.Barrier(4)

    def approve(app: AppProcess) -> None:
        barrier.wait()
        click(app, "U0ADMIN", "approval_approve", request_id)

    threads = [threading.Thread(target=approve, args=(a,)) for a in (one, two, one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Upper bounds for a busy host: two processes, one Postgres, 4 clicks at once.
    slack.wait_for_thread_reply(APPROVALS, timeout=15)
    slack.wait_until(lambda: len(ephemerals(slack, "U0ADMIN")) == 3, 15, "3 'already' notes")
    assert len(twochat.sends) == 1


def test_crash_mid_send_is_reported_unknown_and_never_resent(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'crash.db'}"
    doomed = start_app(DATABASE_URL=database, TWOCHAT_READ_TIMEOUT="60")
    twochat.hang()
    doomed.command("carol are you there", "U0ADMIN", CHANNEL, slack.response_url())
    twochat.wait_for_sends(1)
    doomed.kill()
    twochat.reset()
    revived = start_app(
        DATABASE_URL=database,
        TWOCHAT_READ_TIMEOUT="0.5",
        TWOCHAT_CONNECT_TIMEOUT="0.5",
        SWEEP_INTERVAL_SECONDS="0.2",
    )
    reply = slack.wait_for_thread_reply(CHANNEL, timeout=10)
    assert "outcome unknown" in reply["text"]
    assert "send_retry" in json.dumps(reply.get("blocks"))
    assert twochat.sends == []  # not re-sent by itself
    blocks = json.loads(reply["blocks"]) if isinstance(reply["blocks"], str) else reply["blocks"]
    send_id = blocks[1]["elements"][0]["value"]
    click(revived, "U0DEV1", "send_retry", send_id, channel=CHANNEL)
    note = slack.wait_until(lambda: ephemerals(slack, "U0DEV1"), 5, "refusal")
    assert note == [":no_entry: only the requester or an approver can retry this text"]
    # 2Chat took the SMS after all (the hung call was let go): the Retry, once the attempt
    # has settled, finds it in carol's conversation and records it as sent, texting
    # nobody again.
    wait_until_settled(revived, slack, send_id)
    click(revived, "U0ADMIN", "send_retry", send_id, channel=CHANNEL)
    slack.wait_until(lambda: len(slack.thread_replies(CHANNEL)) == 2, 5, "the retry's outcome")
    assert "message_id `SMO" in slack.thread_replies(CHANNEL)[1]["text"]
    told = slack.wait_until(lambda: ephemerals(slack, "U0ADMIN")[1:], 5, "the admin told")
    assert told == [":no_entry: 2Chat had this SMS already: it was not sent again"]
    assert twochat.sends == []


def test_rate_limit_refusal_says_when_to_try_again(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    limited = start_app(SHIPPED_CONFIG)  # per_recipient_per_hour: 10
    for n in range(10):
        response = limited.command(f"carol n{n}", "U0ADMIN", CHANNEL, slack.response_url())
        assert not response.content
    refused = limited.command("carol n10", "U0ADMIN", CHANNEL, slack.response_url()).json()
    assert "rate limit" in refused["text"] and "you can send again at" in refused["text"]
    twochat.wait_for_sends(10)
    slack.wait_until(lambda: len(slack.thread_replies(CHANNEL)) == 10, 5, "10 outcomes")
    assert len(twochat.sends) == 10


def test_audit_exports_requests_decisions_and_sends(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'audit.db'}"
    app = start_app(DATABASE_URL=database)
    request_id = request_approval(app, slack)
    click(app, "U0ADMIN", "approval_approve", request_id)
    slack.wait_for_thread_reply(APPROVALS)
    env = hermetic_env(DATABASE_URL=database)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--format", "json", "--since", "1d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=tmp_path,
    )
    [row] = json.loads(result.stdout)
    assert row["request_id"] == request_id
    assert row["decided_by"] == "U0ADMIN" and row["send_state"] == "sent"
    assert row["message_id"].startswith("SMO")
    csv_out = subprocess.run(
        [sys.executable, "-m", "bot", "audit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert csv_out.splitlines()[0].startswith("request_id,request_state")


def test_database_outage_is_a_polite_refusal_and_recovers(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, postgres_url: str
) -> None:
    app = start_app(DATABASE_URL=postgres_url)
    schema = postgres_url.rsplit("%3D", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:  # cut the app's connections
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database() "
            "AND application_name <> 'psql' AND query NOT ILIKE %s",
            (f"%{schema}_never%",),
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    first = app.command("carol during the outage", "U0ADMIN", CHANNEL, slack.response_url())
    assert first.status_code == 200
    expected = ["during the outage"]
    if first.content:  # the broken connection was found: a clear refusal, nothing sent
        assert "database is unavailable" in first.json()["text"]
        expected = []
    second = app.command("carol after the outage", "U0ADMIN", CHANNEL, slack.response_url())
    assert second.status_code == 200 and not second.content
    expected.append("after the outage")
    twochat.wait_for_sends(len(expected))
    slack.wait_until(lambda: len(slack.thread_replies(CHANNEL)) == len(expected), 5, "outcomes")
    assert sorted(send["text"] for send in twochat.sends) == sorted(expected)
    assert "Traceback" not in app.log()
