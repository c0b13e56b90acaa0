"""The store side of telling live work from abandoned work, on both backends: a renewed claim
is never taken for a crashed one, a late success replaces "unknown", and what a request's
thread still owes survives in the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import Store
from tests.store.helpers import Backend, FakeClock, new_request


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 3, 3, 14, 0, tzinfo=UTC))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'bridge.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    backend = Backend(request.param, url, clock)
    opened = backend.open()
    yield opened
    opened.close()


def test_a_renewed_claim_is_not_taken_for_a_crashed_one(store: Store, clock: FakeClock) -> None:
    send = store.sends(store.create_request(new_request()).id)[0]
    assert store.claim_send(send.id)
    clock.advance(seconds=10)
    cutoff = clock.now()  # a sweeper's "claimed before": the claim is older than this
    clock.advance(seconds=1)
    assert store.keep_claim(send.id)  # the heartbeat of a process still sending it
    renewed = store.get_send(send.id)
    assert renewed is not None and renewed.attempts == 1  # a heartbeat is not an attempt
    assert not store.mark_unknown(send.id, "crashed", claimed_before=cutoff)
    assert store.get_send(send.id).state == "sending"  # type: ignore[union-attr]
    clock.advance(seconds=10)
    assert store.mark_unknown(send.id, "crashed", claimed_before=clock.now())
    assert not store.keep_claim(send.id)  # an unknown send is nobody's to renew


def test_a_late_success_replaces_unknown_but_a_late_failure_does_not(store: Store) -> None:
    first, second = store.sends(store.create_request(new_request()).id)
    for send in (first, second):
        assert store.claim_send(send.id)
        assert store.mark_unknown(send.id, "crashed")
    assert not store.finish_send(second.id, error="2Chat said no")
    assert store.get_send(second.id).state == "unknown"  # type: ignore[union-attr]
    assert store.finish_send(first.id, message_id="SMOlate")
    found = store.get_send(first.id)
    assert found is not None and (found.state, found.message_id) == ("sent", "SMOlate")
    assert not store.finish_send(first.id, message_id="SMOagain")  # sent is final


def test_a_progress_message_and_an_owed_report_are_kept(store: Store) -> None:
    one, two = store.create_request(new_request()), store.create_request(new_request())
    assert store.progress_message(one.id) is None
    store.set_progress_message(one.id, "1700000000.000001")
    store.set_report_pending(one.id, True)
    store.set_report_pending(two.id, False)
    assert store.progress_message(one.id) == "1700000000.000001"
    assert (store.report_owed(one.id), store.report_owed(two.id)) == (True, False)
    assert [request.id for request in store.pending_reports()] == [one.id]
    store.set_report_pending(one.id, False)
    assert store.pending_reports() == []
    assert store.progress_message(one.id) == "1700000000.000001"
