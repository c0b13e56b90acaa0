"""What a PostgreSQL transaction carries with its BEGIN: a Slack answer's time limit as
the statement timeout, and the advisory locks that serialise rate-limited records."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from bot.errors import StoreError
from bot.store import PostgresStore, RateLimits
from bot.store.core import answer_within
from tests.conftest import POSTGRES
from tests.store.helpers import new_request


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    store.migrate()
    yield store
    store.close()


def test_a_slack_answer_s_time_limit_is_the_transaction_s_statement_timeout(
    store: PostgresStore,
) -> None:
    """Set with BEGIN, in its round trip; background work keeps the server's default."""
    with answer_within(0.3), store._transaction(write=False) as tx:
        limited = tx.one("SELECT current_setting('statement_timeout')")
    with store._transaction(write=False) as tx:
        unlimited = tx.one("SELECT current_setting('statement_timeout')")
    assert limited is not None and limited[0].endswith("ms")
    assert 200 <= int(limited[0].removesuffix("ms")) <= 300
    assert unlimited == ("0",)


def test_transactions_with_the_same_time_limit_run_again_and_again(
    store: PostgresStore,
) -> None:
    """Statements are prepared on first use, but BEGIN with its statement timeout is
    several statements in one, which the server refuses to prepare."""
    for _ in range(6):
        with answer_within(30.0), store._transaction(write=False) as tx:  # 29999 ms each
            assert tx.one("SELECT 1") == (1,)


def test_a_rate_limit_lock_held_elsewhere_is_waited_for_only_as_long_as_the_answer(
    store: PostgresStore,
) -> None:
    """The locks go out with BEGIN, after the statement timeout: another process holding
    one makes the record fail in time for Slack, not wait until that process is done."""
    limits = RateLimits(per_sender_per_hour=10, per_recipient_per_hour=None)
    with psycopg.connect(POSTGRES, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(hashtext('sms-bridge:sender:U0DEV1'))")
        # Let go after a while, so that a wait without a limit fails the test, not hangs it.
        release = threading.Timer(3.0, other.rollback)
        release.start()
        began = time.monotonic()
        try:
            with answer_within(0.3), pytest.raises(StoreError):
                store.create_request(new_request(), limits=limits)
        finally:
            release.cancel()
        assert time.monotonic() - began < 1.5
        other.execute("ROLLBACK")
