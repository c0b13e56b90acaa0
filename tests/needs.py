"""What a test needs beyond this process, as markers, kept honest at run time.

``app``: the test starts the app (``python -m bot``, or the app served in this process).
``postgres``: the test uses the Postgres server at ``SMS_BRIDGE_TEST_POSTGRES``.
``make test-fast`` runs the tests with neither, as the inner loop. Tests get the markers
from the fixtures they use; a test that runs ``python -m bot`` (or ``sms-bridge``) or
connects to the test server some other way must say so itself. Every run, fast or full,
fails such a test when it does not, so the fast selection cannot quietly grow slow or start
needing a server.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.postgres_server import POSTGRES, PostgresUnavailable, ensure_test_database

# Fixtures whose use means a need (fixtures built on them are covered: pytest lists the
# whole closure in ``item.fixturenames``).
FIXTURE_NEEDS = {
    "start_app": "app",
    "in_process": "app",
    "postgres_url": "postgres",
}
NEEDS = {
    "app": "starts the app: a `python -m bot` process, or the app served in this process",
    "postgres": "uses the Postgres server at SMS_BRIDGE_TEST_POSTGRES",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, meaning in NEEDS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            need = FIXTURE_NEEDS.get(fixture)
            if need is not None and item.get_closest_marker(need) is None:
                item.add_marker(need)


def pytest_collection_finish(session: pytest.Session) -> None:
    """When any selected test needs Postgres, have the test database ready, or stop the run
    at once with one line saying how to get a server."""
    if any(item.get_closest_marker("postgres") for item in session.items):
        try:
            ensure_test_database()
        except PostgresUnavailable as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


def starts_the_app(args: Any) -> bool:
    """Whether a command line runs the app: ``python -m bot …`` or ``sms-bridge …``."""
    argv = [str(arg) for arg in args] if isinstance(args, Sequence) else [str(args)]
    if argv and argv[0].endswith("sms-bridge"):
        return True
    return any(argv[i : i + 2] == ["-m", "bot"] for i in range(len(argv)))


def _server(params: dict[str, Any]) -> tuple[str, str]:
    host = str(params.get("host") or "localhost")
    local = host in ("localhost", "127.0.0.1", "::1") or host.startswith("/")
    return ("local" if local else host, str(params.get("port") or 5432))


def on_the_test_server(conninfo: str, **kwargs: Any) -> bool:
    """Whether a connection goes to the server at SMS_BRIDGE_TEST_POSTGRES (a test may well
    try an unreachable one without needing any)."""
    return _server(conninfo_to_dict(conninfo, **kwargs)) == _server(conninfo_to_dict(POSTGRES))


class _UndeclaredNeed(AssertionError):
    def __init__(self, need: str) -> None:
        super().__init__(f"this test {NEEDS[need]} but is not marked: add @pytest.mark.{need}")


@pytest.fixture(autouse=True)
def _needs_are_declared(request: pytest.FixtureRequest) -> Iterator[None]:
    """Refuse, in a test not marked for it, to start the app or to connect to Postgres."""
    patch = pytest.MonkeyPatch()
    if request.node.get_closest_marker("app") is None:
        real_popen = subprocess.Popen

        class GuardedPopen(real_popen):  # type: ignore[valid-type,misc]
            def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
                if starts_the_app(args):
                    raise _UndeclaredNeed("app")
                super().__init__(args, *rest, **kwargs)

        patch.setattr(subprocess, "Popen", GuardedPopen)
    if request.node.get_closest_marker("postgres") is None:
        real_connect = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

        def guarded_connect(cls: Any, conninfo: str = "", **kwargs: Any) -> Any:
            if on_the_test_server(conninfo, **kwargs):
                raise _UndeclaredNeed("postgres")
            return real_connect(cls, conninfo, **kwargs)

        patch.setattr(psycopg.Connection, "connect", classmethod(guarded_connect))
        patch.setattr(psycopg, "connect", psycopg.Connection.connect)
    try:
        yield
    finally:
        patch.undo()
