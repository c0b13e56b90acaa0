"""The developer's loop: `make test` gets its Postgres ready or says in one line how, and
`make test-fast` runs only tests that need neither an app process nor Postgres (the
markers are checked at run time, so they cannot drift)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.appproc import ROOT, free_port, hermetic_env
from tests.postgres_server import POSTGRES, VARIABLE, ensure_test_database


def unreachable_server() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/test"


def make_dry_run(target: str) -> list[str]:
    """The commands `make <target>` would run, without running them."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_an_unmarked_test_may_not_start_the_app() -> None:
    with pytest.raises(AssertionError, match=r"add @pytest\.mark\.app"):
        subprocess.run([sys.executable, "-m", "bot", "--version"], check=False)


def test_an_unmarked_test_may_not_use_the_test_postgres() -> None:
    with pytest.raises(AssertionError, match=r"add @pytest\.mark\.postgres"):
        psycopg.connect(POSTGRES)


def test_unreachable_postgres_stops_within_seconds_with_one_line() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tests.postgres_server"],
        cwd=ROOT,
        env=hermetic_env(**{VARIABLE: unreachable_server()}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert VARIABLE in line
    assert "pg_ctlcluster" in line and "docker run" in line
    assert "make test-fast" in line


def test_pytest_stops_at_once_when_its_postgres_tests_have_no_server() -> None:
    started = time.monotonic()
    selected = "tests/test_dev_loop.py::test_a_missing_test_database_is_created"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", selected],
        cwd=ROOT,
        env=hermetic_env(**{VARIABLE: unreachable_server()}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 30
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout
    assert f"No PostgreSQL at {VARIABLE}=" in result.stdout
    assert "no tests ran" in result.stdout


@pytest.fixture
def missing_database() -> Iterator[str]:
    name = f"newcomer_{uuid.uuid4().hex[:8]}"
    yield make_conninfo(POSTGRES, dbname=name)
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.mark.postgres
def test_a_missing_test_database_is_created(missing_database: str) -> None:
    assert ensure_test_database(missing_database) is True
    psycopg.connect(missing_database).close()
    assert ensure_test_database(missing_database) is False


def test_make_test_checks_postgres_before_the_slow_steps() -> None:
    commands = make_dry_run("test")
    assert "tests.postgres_server" in commands[0]
    assert any("pytest" in command for command in commands)


def test_make_test_fast_leaves_out_the_app_and_postgres() -> None:
    (command,) = [line for line in make_dry_run("test-fast") if "pytest" in line]
    assert "-m 'not app and not postgres'" in command or '-m "not app and not postgres"' in command


def collected(arguments: list[str]) -> list[str]:
    """The test ids pytest selects with ``arguments``, collected without running any."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *arguments,
            "--collect-only",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=hermetic_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_make_test_runs_every_test_once_across_its_two_processes() -> None:
    script = " ".join(make_dry_run("test"))
    selections = [shlex.split(arguments) for arguments in re.findall(r"-m pytest ([^;]*);", script)]
    assert len(selections) == 3, script
    parts = [collected(arguments) for arguments in selections]
    everything = collected([])
    assert all(parts), "a selection in `make test` picks no test"
    assert sorted(test for part in parts for test in part) == sorted(everything)
