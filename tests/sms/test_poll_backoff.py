"""How long the reply poller waits after failed polls: long while 2Chat fails (every call
costs a credit), briefly while only the database fails (that costs no credit, and acks and
STOPs must be read soon after it is back).

Time is simulated: the poller's sleep records each wait and sets up what the next poll
meets, so minutes of backing off run at once. The database is a real SQLite store that can
be made to fail; 2Chat is a stand-in that lists one channel and fails its reads on demand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from bot.config.loader import load_policy
from bot.errors import StoreError, TwoChatError
from bot.sending.replies import DB_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, ReplyRelay
from bot.sending.roles import Db, Wording
from bot.slack.render.presenter import SLACK_PRESENTER
from bot.sms.twochat import Conversation
from bot.store import SqliteStore
from tests.sms.test_replies import ALICE, replies_config

FROM = "+17137157533"  # the stand-in channel's number
INTERVAL = 1.0

Phase = Literal["up", "db", "2chat"]  # what the next poll meets: all well, or which fails


class World:
    """What fails at the next poll."""

    def __init__(self) -> None:
        self.phase: Phase = "up"


class FlakyStore(SqliteStore):
    """A SQLite store whose database goes away while ``world.phase`` is "db"; a text went
    out lately otherwise, so polls call 2Chat."""

    def __init__(self, path: str, world: World) -> None:
        super().__init__(path)
        self.world = world

    def texted_since(self, since: datetime) -> dict[str, frozenset[str]]:
        if self.world.phase == "db":
            raise StoreError("bridge.db is unavailable: terminating connection")
        return {FROM: frozenset({ALICE})}


class FlakyTwoChat:
    """2Chat's read endpoints: one SMS channel, no conversation; fails while "2chat"."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def list_channels(self) -> list[dict[str, Any]]:
        return [{"uuid": "SMS1", "phone_number": FROM}]

    async def conversations(self, channel: str) -> list[Conversation]:
        if self.world.phase == "2chat":
            raise TwoChatError("2Chat answered 402: no credit left", status=402)
        return []


class Finished(Exception):
    """The script has run out: ends the poller."""


class Clock:
    """The poller's sleep: records each wait, then sets what the next poll meets."""

    def __init__(self, world: World, phases: list[Phase]) -> None:
        self.world = world
        self.phases = phases
        self.waits: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.waits.append(delay)
        if not self.phases:
            raise Finished
        self.world.phase = self.phases.pop(0)


@pytest.fixture
def poller(tmp_path: Path) -> Iterator[Any]:
    """``run(phases)``: run the poller through one poll per phase; the waits after each."""
    world = World()
    store = FlakyStore(str(tmp_path / "bridge.db"), world)
    store.migrate()
    db = Db(store)
    policy = load_policy(replies_config(tmp_path, poll_interval=f"{INTERVAL:g}s"))

    async def run(phases: list[Phase]) -> list[float]:
        clock = Clock(world, phases[1:])
        world.phase = phases[0]
        words = Wording(SLACK_PRESENTER, lambda: policy)
        # No SMS comes in, so nothing is posted: the poller needs no reporter.
        relay = ReplyRelay(db, lambda: policy, words, None, FlakyTwoChat(world), sleep=clock.sleep)
        with pytest.raises(Finished):
            await relay.run_forever()
        return clock.waits

    yield run
    db.close()
    store.close()


async def test_after_a_database_outage_the_next_poll_comes_within_seconds(poller: Any) -> None:
    """A Postgres restart that fails twelve polls in a row used to push the waits to five
    minutes (as for 2Chat failures), so an ack or a STOP was read minutes after the
    database was back. The waits still grow, but only to the short cap."""
    waits = await poller(["db"] * 12 + ["up"])
    assert waits[:3] == [2.0, 4.0, 8.0]  # still backing off, not hammering the database
    assert max(waits) == DB_BACKOFF_SECONDS
    assert waits[-1] == INTERVAL  # back to the poll interval once a poll succeeds


async def test_2chat_failures_still_back_off_to_the_long_cap(poller: Any) -> None:
    """Every 2Chat call costs a credit: a 2Chat out of credit is asked rarely."""
    waits = await poller(["2chat"] * 12 + ["up"])
    assert waits[:3] == [2.0, 4.0, 8.0]
    assert max(waits) == MAX_BACKOFF_SECONDS
    assert waits[-1] == INTERVAL


async def test_a_run_of_mixed_failures_waits_by_the_latest(poller: Any) -> None:
    """The run of failures counts on, but the cap is the latest failure's: a database
    failure after long 2Chat waits waits briefly, and 2Chat failing again waits long."""
    waits = await poller(["2chat"] * 10 + ["db", "db", "2chat", "up"])
    assert waits[9] == MAX_BACKOFF_SECONDS
    assert waits[10:] == [DB_BACKOFF_SECONDS, DB_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, INTERVAL]
