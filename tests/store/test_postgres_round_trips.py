"""How many times a send's store calls wait for the PostgreSQL server, counted on the wire.

A proxy between the store and the server counts the server's ReadyForQuery messages: the
server sends one at the end of each Sync (and each simple query), so each is one round
trip the client waited for, however many statements went out before it.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.core.budget import BudgetRule, Priority
from bot.store import PostgresStore, RateLimits, Recorded
from bot.store.requests import Recording
from tests.fakes.tcp_proxy import TcpProxy
from tests.store.helpers import ALICE, new_request

LIMITS = RateLimits(per_sender_per_hour=100, per_recipient_per_hour=100)
HOLDER, TTL = "round-trips", timedelta(seconds=30)


class ReadyCounter(TcpProxy):
    """The test proxy, reading each connection message by message (a type byte, then a
    length that counts itself; the client's first message, the startup message, has no
    type byte: the PostgreSQL wire protocol, "Message Formats",
    https://www.postgresql.org/docs/current/protocol-message-formats.html), counting the
    server's ReadyForQuery ('Z') and DataRow ('D', one per row sent back) messages and the
    client's Execute ('E') messages, one for each statement run by the extended protocol
    (all of psycopg's)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.ready = 0
        self.rows = 0
        self.executed = 0

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        from_server = src.getpeername()[1] == self.target[1]
        buffer = b""
        started = from_server  # the client's startup message comes first, untyped
        forward = dst.sendall

        def counted(data: bytes) -> None:
            nonlocal buffer, started
            buffer += data
            if not started and len(buffer) >= 4:
                length = struct.unpack("!i", buffer[:4])[0]
                if len(buffer) < length:
                    return forward(data)
                buffer, started = buffer[length:], True
            while started and len(buffer) >= 5:
                kind, length = buffer[:1], struct.unpack("!i", buffer[1:5])[0]
                if len(buffer) < 1 + length:
                    break
                if from_server:
                    self.ready += kind == b"Z"
                    self.rows += kind == b"D"
                else:
                    self.executed += kind == b"E"
                buffer = buffer[1 + length :]
            forward(data)

        class Counting:
            def sendall(self, data: bytes) -> None:
                counted(data)

            def __getattr__(self, name: str) -> object:
                return getattr(dst, name)

        return super()._pipe(src, Counting())  # type: ignore[arg-type]


@pytest.fixture
def store(postgres_url: str) -> Iterator[tuple[PostgresStore, ReadyCounter]]:
    """One connection, so every call gets the one just used, lent without a check."""
    parts = urlsplit(postgres_url)
    with ReadyCounter(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        netloc = f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"
        # No SSL or GSS request first: the server would answer it with one untyped byte.
        query = f"{parts.query}&sslmode=disable&gssencmode=disable"
        store = PostgresStore(urlunsplit(parts._replace(netloc=netloc, query=query)), max_size=1)
        store.migrate()
        yield store, proxy
        store.close()


def recording(store: PostgresStore, key: str) -> Recording:
    """A single-recipient /sms to be recorded as the app records it, sent by ``HOLDER``."""
    return store.recording(
        new_request(recipients=(ALICE,)),
        limits=LIMITS,
        claims=[(key, timedelta(minutes=5))],
        start=(HOLDER, TTL),
    )


def start(store: PostgresStore, key: str) -> Recorded:
    """A single-recipient /sms recorded alone."""
    recorded = recording(store, key)()
    assert recorded is not None
    return recorded


def send(store: PostgresStore, key: str) -> Recorded:
    """A single-recipient /sms as the app stores it: record, claim, finish."""
    recorded = start(store, key)
    [sent] = recorded.sends
    thread = (recorded.request.id, "C0GENERAL", "1.000001")
    assert store.claim_send(sent.id, thread=thread)
    lease = (recorded.request.id, HOLDER)
    assert store.finish_last_send(sent.id, lease, message_id="m-1") == (True, True)
    store.report_landed(recorded.request.id, HOLDER)
    return recorded


@pytest.mark.postgres
def test_a_single_recipient_send_waits_for_the_server_five_times(
    store: tuple[PostgresStore, ReadyCounter],
) -> None:
    """record: its statements, then COMMIT; claim, finish and the outcome landed: one
    statement each, committed by the Sync that ends it."""
    postgres, proxy = store
    send(postgres, "warm-up")  # the first use of each statement prepares it
    before = proxy.ready
    recorded = send(postgres, "counted")
    assert proxy.ready - before == 5
    assert postgres.get_request(recorded.request.id).state == "completed"  # type: ignore[union-attr]
    assert postgres.sends(recorded.request.id)[0].state == "sent"


@pytest.mark.postgres
def test_a_single_recipient_send_runs_ten_statements(
    store: tuple[PostgresStore, ReadyCounter],
) -> None:
    """Each statement costs the app and the server CPU of its own, however few round trips
    they share. record: BEGIN (its refusals are read before it commits), the advisory
    locks, the claim, the opt-outs, the limits, then one insert of the request, its sends,
    its rate counts and its lease, and COMMIT; claim, finish and the outcome landed: one
    statement each, committed by the pipeline's Sync without BEGIN or COMMIT."""
    postgres, proxy = store
    send(postgres, "warm-up")
    before = proxy.executed
    recorded = send(postgres, "counted")
    assert proxy.executed - before == 10
    assert postgres.get_request(recorded.request.id).state == "completed"  # type: ignore[union-attr]
    [sent] = postgres.sends(recorded.request.id)
    assert (sent.state, sent.message_id, sent.attempts) == ("sent", "m-1", 1)
    assert postgres.acquire_lease(f"request:{recorded.request.id}", "another", TTL)


@pytest.mark.postgres
def test_taking_a_2chat_call_from_the_shared_budget_runs_five_statements(
    store: tuple[PostgresStore, ReadyCounter],
) -> None:
    """Every 2Chat call of every process asks first: BEGIN, the budget's lock, the calls
    of the last minute (the purge of older ones riding on that read), the new call's
    insert, COMMIT."""
    postgres, proxy = store
    rule = BudgetRule(per_minute=100, burst=100)
    assert postgres.take_twochat_call(Priority.SEND, rule, False).wait == 0  # prepares them
    before = proxy.executed
    assert postgres.take_twochat_call(Priority.SEND, rule, False).wait == 0
    assert proxy.executed - before == 5


@pytest.mark.postgres
def test_a_start_reads_one_row_however_many_calls_fill_the_minute(
    store: tuple[PostgresStore, ReadyCounter],
) -> None:
    """The shared budget's cost does not grow with the rate: at 20,000 calls a minute a
    start used to read the minute's whole log; it now reads the one row that holds the
    limit, the count, the pace and the call its cap looks back to."""
    postgres, proxy = store
    rule = BudgetRule(per_minute=1_000_000, burst=1_000_000)
    for _ in range(300):
        assert postgres.take_twochat_call(Priority.SEND, rule, False).wait == 0
    before, executed = proxy.rows, proxy.executed
    assert postgres.take_twochat_call(Priority.SEND, rule, False).wait == 0
    # Two rows: the lock's (void) answer, and the ledger's one.
    assert (proxy.rows - before, proxy.executed - executed) == (2, 5)


@pytest.mark.postgres
def test_records_queued_together_share_one_transaction_and_two_round_trips(
    store: tuple[PostgresStore, ReadyCounter],
) -> None:
    """Records (each before its Slack ack) queued together share a transaction: BEGIN,
    every record's locks in one statement, each one's claim, opt-outs, limits and insert,
    then COMMIT. Two round trips for them all (their answers, the commit), as for one."""
    postgres, proxy = store
    send(postgres, "warm-up")
    group = [recording(postgres, f"together {index}") for index in range(5)]
    ready, executed = proxy.ready, proxy.executed
    outcomes = postgres.run_batch(group)
    assert (proxy.ready - ready, proxy.executed - executed) == (2, 2 + 4 * 5 + 1)
    recorded = [outcome.value for outcome in outcomes]
    assert all(isinstance(r, Recorded) and r.fresh and r.started for r in recorded)
    assert len({r.request.id for r in recorded}) == 5  # type: ignore[union-attr]


@pytest.mark.postgres
def test_sends_in_flight_share_one_round_trip_for_their_claims_finishes_and_landings(
    store: tuple[PostgresStore, ReadyCounter],
) -> None:
    """Under load the store's threads take the claims (then the finishes, then the
    outcomes landed) of the sends in flight together, as ``run_batch`` runs them here:
    one statement each as alone, but one round trip and one commit for all of them."""
    postgres, proxy = store
    send(postgres, "warm-up")
    started = [start(postgres, f"in flight {index}") for index in range(5)]
    steps = [
        [postgres.claiming(r.sends[0].id, thread=(r.request.id, "C0", "1.1")) for r in started],
        [postgres.finishing_last(r.sends[0].id, (r.request.id, HOLDER)) for r in started],
        [postgres.landing(r.request.id, HOLDER) for r in started],
    ]
    ready, executed = proxy.ready, proxy.executed
    outcomes = [postgres.run_batch(step) for step in steps]
    assert (proxy.ready - ready, proxy.executed - executed) == (3, 15)
    claims, finishes, _ = ([outcome.value for outcome in step] for step in outcomes)
    assert claims == [True] * 5 and finishes == [(True, True)] * 5
    for recorded in started:
        assert postgres.get_request(recorded.request.id).state == "completed"  # type: ignore[union-attr]
        assert not postgres.report_owed(recorded.request.id)
        assert postgres.acquire_lease(f"request:{recorded.request.id}", "another", TTL)
