"""A page whose process dies after Slack was answered, before the page was recorded, is
paged by the next process: Slack does not deliver an answered event again, so the bridge
keeps the event from before it answers until the page is recorded. Run as ``python -m bot``
against the stand-ins, killed with ``kill -9`` while the page waits for Slack's directory
(the example's on-call roster is a Slack user group), on SQLite and on Postgres."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.appproc import AppProcess
from tests.conftest import StartApp
from tests.escalation.ladder_app import eventually, sends_to
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_roster_paths import (
    ALICE,
    BOB,
    FAST,
    INCIDENT,
    WORKSPACE,
    alert,
    mention,
    oncall,
)

pytestmark = pytest.mark.twochat_limit(6000)

# Short 2Chat timeouts make a page event nobody renewed for 3 s one a crash cut off.
CRASH = {**FAST, "TWOCHAT_CONNECT_TIMEOUT": "0.5", "TWOCHAT_READ_TIMEOUT": "0.5"}
GROUPS = "usergroups.users.list"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.mark.parametrize(
    "paging",
    [
        lambda app: alert(app, "CRITICAL: db-1 is down"),
        lambda app: mention(app, "page db-1 is down"),
    ],
    ids=["alert", "mention"],
)
def test_a_page_cut_off_by_a_crash_before_it_was_recorded_is_paged_once_by_the_next_process(
    start_app: StartApp,
    slack: SlackStandIn,
    twochat: TwoChatStandIn,
    tmp_path: Path,
    database: str,
    paging: Callable[[AppProcess], str],
) -> None:
    slack.user_groups.update({group: list(users) for group, users in WORKSPACE.items()})
    config = oncall(tmp_path)
    doomed = start_app(config, DATABASE_URL=database, **CRASH)
    slack.stall(GROUPS)  # the page waits for db-oncall's members: Slack was answered
    paging(doomed)
    slack.wait_until(
        lambda: [c for c in slack.stalled_calls if c.method == GROUPS], 5, "the roster read"
    )
    doomed.kill()
    slack.unstall()
    assert twochat.sends == []

    revived = start_app(config, DATABASE_URL=database, **CRASH)
    eventually(lambda: sends_to(twochat, ALICE) and sends_to(twochat, BOB), 15, "the page")
    texted = Counter(str(send["to_number"]) for send in twochat.wait_for_sends(2))
    assert texted == {ALICE: 1, BOB: 1}
    revived.wait_for_log("was cut off (a crash?); paging it now")
    assert revived.terminate() == 0


def test_a_page_that_dies_with_every_process_is_given_up_aloud_not_tried_for_ever(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """Each process that takes the cut-off page over dies paging it (a crash loop): after
    three takeovers the next process says in the alert's thread that it was not sent, and
    no process starts it again."""
    slack.user_groups.update({group: list(users) for group, users in WORKSPACE.items()})
    config, database = oncall(tmp_path), f"sqlite:///{tmp_path / 'shared.db'}"

    def tries() -> int:  # how often a process began the page: it reads db-oncall first
        return len(
            [
                call
                for call in slack.stalled_calls
                if call.method == GROUPS and call.args.get("usergroup") == "S0DBONCALL"
            ]
        )

    slack.stall(GROUPS)  # every try waits for db-oncall's members, and dies waiting
    try:
        app = start_app(config, DATABASE_URL=database, **CRASH)
        thread = alert(app, "CRITICAL: db-2 is down")
        for n in range(1, 5):  # the first process, then three that take the page over
            slack.wait_until(lambda n=n: tries() >= n, 15, f"try {n} of the page")
            app.kill()
            app = start_app(config, DATABASE_URL=database, **CRASH)
        note = slack.wait_until(
            lambda: [p for p in slack.thread_replies(INCIDENT) if p.get("thread_ts") == thread],
            15,
            "the note that the page was given up",
        )[0]["text"]
        assert "not sent" in note and "Page again" in note
        app.wait_for_log("given up after 3 takeovers")
        assert tries() == 4 and twochat.sends == []
    finally:
        slack.unstall()
