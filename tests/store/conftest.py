"""Every store test runs against both backends for real: SQLite in a temp dir, PostgreSQL in
a fresh schema (``postgres_url``, from the top-level conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import Store
from tests.store.helpers import Backend, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 3, 3, 14, 0, 0, 123456, tzinfo=UTC))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    backend = Backend(request.param, url, clock)
    try:
        yield backend
    finally:
        for store in backend.opened:
            store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
