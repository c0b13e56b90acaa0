"""Pages while Slack's directory hangs (``usergroups.users.list`` and ``users.profile.get``
never answer): what no Slack roster is needed for is not delayed by it, and a ladder whose
tier does wait for Slack holds up no other ladder. Run as ``python -m bot`` against the
stand-ins, with the shipped ``config/oncall-example.yaml``.

The app gives up on a hung Slack call after 10 s (its Web API client's timeout), so a page
that waited for the directory could not go out sooner: each bound below is well inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StartApp
from tests.escalation.ladder_app import board_says, eventually, sends_to
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.slack.test_roster_paths import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    FAST,
    GENERAL,
    TIER_ONE,
    TIER_TWO,
    WORKSPACE,
    alert,
    mention,
    numbers,
    oncall,
)

pytestmark = pytest.mark.twochat_limit(6000)

DIRECTORY = ("usergroups.users.list", "users.profile.get")
# Well inside the 10 s a page that waited for the hung directory would take at least.
PROMPTLY = 6.0


@pytest.fixture
def hung_directory(slack: SlackStandIn) -> Iterator[SlackStandIn]:
    """The Slack stand-in with the example's user groups, for a test to hang the directory
    in; answering again at the test's end."""
    slack.user_groups.update({group: list(users) for group, users in WORKSPACE.items()})
    yield slack
    slack.unstall()


def hang(workspace: SlackStandIn) -> None:
    for method in DIRECTORY:
        workspace.stall(method)


def test_an_alert_to_rosters_kept_in_the_file_pages_at_once_while_slack_hangs(
    start_app: StartApp, hung_directory: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """The channel's ladder pages a list group, then a contact with a number in the file:
    neither the alert, nor its send-time check, nor the next tier asks Slack anything."""
    swapped = {
        TIER_ONE: "      - page: db-leads\n        wait: 1s",
        TIER_TWO: "      - page: alice\n        wait: 10m",
    }
    app = start_app(oncall(tmp_path, swapped), **FAST)
    hang(hung_directory)
    thread = alert(app, "CRITICAL: db-1 replication stopped")
    assert numbers(twochat, 2) == [CAROL, DAVE]  # within wait_for_sends' 5 s
    eventually(lambda: sends_to(twochat, ALICE), PROMPTLY, "tier 2 texting alice")
    board_says(hung_directory, thread, "tier 2 of 2")
    assert hung_directory.stalled_calls == [], "a page with file rosters asked Slack"


def test_a_tier_waiting_for_slack_holds_up_no_other_ladder(
    start_app: StartApp, hung_directory: SlackStandIn, twochat: TwoChatStandIn, tmp_path: Path
) -> None:
    """Two channels escalate. The incident ladder's tier 2 is a user group kept in Slack,
    and Slack hangs when it comes due; the general ladder's tier 2 (bob, in the file) comes
    due a moment later and is texted at once, not after the other tier's wait for Slack.
    Once Slack answers again, the held tier texts its group."""
    swapped = {
        TIER_ONE: "      - page: db-leads\n        wait: 3s",
        TIER_TWO: "      - page: web-oncall\n        wait: 10m",
        "channels:\n": (
            "  general:\n    tiers:\n      - page: db-leads\n        wait: 4s\n"
            "      - page: bob\n        wait: 10m\n"
            "channels:\n  C0GENERAL:\n    escalation: general\n"
        ),
    }
    app = start_app(oncall(tmp_path, swapped), **FAST)
    mention(app, "page db-1 is down")
    mention(app, "page the web tier is down", channel=GENERAL)
    assert numbers(twochat, 4) == sorted([CAROL, CAROL, DAVE, DAVE])  # both tier 1s
    hang(hung_directory)
    hung_directory.wait_until(
        lambda: [c for c in hung_directory.stalled_calls if c.method == DIRECTORY[0]],
        8,
        "the incident tier asking Slack for web-oncall",
    )
    eventually(lambda: sends_to(twochat, BOB), PROMPTLY, "the general ladder's tier 2")
    assert sends_to(twochat, ERIN) == []  # still waiting for Slack
    hung_directory.unstall()
    eventually(lambda: sends_to(twochat, ERIN), 10, "the held tier, once Slack answers")
    assert len(sends_to(twochat, ERIN)) == 1 and len(sends_to(twochat, BOB)) == 1
