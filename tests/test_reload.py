"""SIGHUP reloads the policy file: a valid one is swapped in at once, an invalid one is
refused with its located errors and the policy in force stays."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp, policy_file
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn

DEV_TARGETS = 'to: [db-oncall, carol, "+447700900*"]'


def help_text(app: AppProcess, slack: SlackStandIn) -> str:
    response = app.command("help", "U0DEV1", "C0GENERAL", slack.response_url())
    return str(response.json()["text"])


def reload(app: AppProcess, expected_log: str, count: int) -> None:
    app.proc.send_signal(signal.SIGHUP)
    deadline_log = app.wait_for_log(expected_log)
    assert deadline_log.count(expected_log) >= count


def test_valid_policy_is_swapped_in_and_invalid_one_refused(
    start_app: StartApp, slack: SlackStandIn, tmp_path: Path
) -> None:
    config = policy_file(tmp_path)
    app = start_app(config=config)
    assert "You may text: db-oncall, carol, +447700900*." in help_text(app, slack)

    config.write_text(
        config.read_text().replace(DEV_TARGETS, DEV_TARGETS.replace("carol", "alice"))
    )
    reload(app, "policy reloaded", 1)
    assert "You may text: db-oncall, alice, +447700900*." in help_text(app, slack)

    config.write_text(config.read_text().replace("max_segments: 3", "max_segmnts: 3"))
    reload(app, "policy not reloaded", 1)
    log = app.log()
    assert f"{config}:" in log and "max_segmnts" in log
    assert "You may text: db-oncall, alice, +447700900*." in help_text(app, slack)


@pytest.mark.twochat_limit(6000)
def test_reloads_under_load_drop_nothing(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    limit = "per_recipient_per_hour: 10000"
    fast = {limit: f"{limit}\n  requests_per_minute: 6000"}
    config = policy_file(tmp_path, fast)
    app = start_app(config=config)

    def send(n: int) -> int:
        if n % 5 == 0:
            app.proc.send_signal(signal.SIGHUP)
        return app.command(
            f"alice load {n}", "U0DEV1", "C0GENERAL", slack.response_url()
        ).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(send, range(20)))
    assert statuses == [200] * 20
    sent = twochat.wait_for_sends(20)
    assert sorted(s["text"] for s in sent) == sorted(f"load {n}" for n in range(20))
    assert "policy reloaded" in app.wait_for_log("policy reloaded")
