"""The plans PostgreSQL picks for the statements every send runs, on tables not yet analysed
(a new deployment's first minutes; every benchmark run): each finds its row by its key, not
by reading every request in flight or the whole 2Chat log.

What the server read is taken from its statistics views (``pg_stat_user_tables`` and
``pg_stat_user_indexes``, https://www.postgresql.org/docs/current/monitoring-stats.html),
which a session reports when it ends: the store is closed first, then the test waits for the
rows it inserted to show there, so the reads beside them are known to have arrived.
"""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from bot.core.budget import BudgetRule, Priority
from bot.store import PostgresStore, RateLimits
from tests.store.helpers import BOB, new_request
from tests.store.test_postgres_round_trips import HOLDER, TTL, send

IN_FLIGHT = 300
FINISHED = 10


def _server_reads(url: str, table: str, inserted: int) -> dict[str, int]:
    """Rows the server read from ``table``: ``"seq"`` by scanning it, and by each index,
    once the statistics show the ``inserted`` rows (a session's report can lag its end)."""
    deadline = time.monotonic() + 15
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT n_tup_ins, COALESCE(seq_tup_read, 0) FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema() AND relname = %s",
                (table,),
            ).fetchone()
            if row is not None and row[0] >= inserted:
                break
            assert time.monotonic() < deadline, f"no statistics for {table}: {row}"
            time.sleep(0.05)
        reads = {"seq": int(row[1])}
        for name, read in conn.execute(
            "SELECT indexrelname, idx_tup_read FROM pg_stat_user_indexes "
            "WHERE schemaname = current_schema() AND relname = %s",
            (table,),
        ):
            reads[name] = int(read)
    return reads


@pytest.mark.postgres
def test_finishing_a_send_reads_its_request_by_key_while_hundreds_are_in_flight(
    postgres_url: str,
) -> None:
    """Unanalysed, ``id = ? AND state = 'sending'`` tied the primary key with the state
    indexes, and the plan kept took one: every request in flight read at every finish."""
    store = PostgresStore(postgres_url)
    store.migrate()
    # Past the five runs after which the server may keep one plan for good, decided while
    # the table is nearly empty, as when a deployment starts.
    for index in range(FINISHED):
        send(store, f"first {index}")
    for index in range(IN_FLIGHT):  # recorded and claimed, their texts on the way
        recorded = store.record_request(
            new_request(recipients=(BOB,), sender="U0OTHER"),
            limits=RateLimits(None, None),
            claims=[(f"in flight {index}", timedelta(minutes=5))],
            start=(HOLDER, TTL),
        )
        assert recorded is not None
        thread = (recorded.request.id, "C0GENERAL", f"1.{index:06}")
        assert store.claim_send(recorded.sends[0].id, thread=thread)
    for index in range(FINISHED):
        send(store, f"finished {index}")
    store.close()
    reads = _server_reads(postgres_url, "requests", IN_FLIGHT + 2 * FINISHED)
    assert all(read == 0 for name, read in reads.items() if name != "requests_pkey"), reads


@pytest.mark.postgres
def test_a_start_looks_up_one_call_not_the_whole_2chat_log(postgres_url: str) -> None:
    """As a join, the look-up of the call the cap looks back to was a hash of the whole log."""
    store = PostgresStore(postgres_url)
    store.migrate()
    rule = BudgetRule(per_minute=1_000_000, burst=1_000_000)
    for _ in range(IN_FLIGHT):
        assert store.take_twochat_call(Priority.SEND, rule, False).wait == 0
    store.close()
    reads = _server_reads(postgres_url, "twochat_calls", IN_FLIGHT)
    assert reads["seq"] == 0 and reads["twochat_calls_at"] == 0, reads
