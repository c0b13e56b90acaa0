"""The Postgres server the suite tests the Postgres store against, made ready or named.

``python -m tests.postgres_server`` (the first step of ``make test``) creates the test
database when the server has none, and when no server answers stops within seconds with
one line that says which setting points at it and how to start one, instead of a run of
minutes that ends in a wall of connection errors.
"""

from __future__ import annotations

import os
import sys

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

VARIABLE = "SMS_BRIDGE_TEST_POSTGRES"
POSTGRES = os.environ.get(VARIABLE, "postgresql://postgres@127.0.0.1:5432/test")
# Seconds to wait for a server before calling it unreachable.
CONNECT_TIMEOUT = 3
START_HINT = (
    "start one (on Debian/Ubuntu `pg_ctlcluster <version> main start`, or "
    "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`) or point "
    f"{VARIABLE} at a server you have; `make test-fast` needs none"
)


class PostgresUnavailable(Exception):
    """No usable server at the URL; the message is the one line to show."""


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def ensure_test_database(url: str = POSTGRES) -> bool:
    """Make sure the database in ``url`` exists; True when it had to be created."""
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
        return False
    except psycopg.OperationalError as direct:
        reason = first_line(direct)
    # Either the server is down or only the database is missing: ask the server's own
    # maintenance database, which every cluster has.
    params = conninfo_to_dict(url)
    name = str(params.get("dbname") or "")
    maintenance = make_conninfo(url, dbname="postgres", connect_timeout=CONNECT_TIMEOUT)
    try:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is not None or not name:
                raise PostgresUnavailable(f"{VARIABLE}={url} cannot be used: {reason}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.OperationalError:
        raise PostgresUnavailable(
            f"No PostgreSQL at {VARIABLE}={url} ({reason}): {START_HINT}."
        ) from None
    except psycopg.Error as exc:  # e.g. a role that may not create databases
        raise PostgresUnavailable(f"{VARIABLE}={url} cannot be used: {first_line(exc)}") from None


def main() -> int:
    try:
        if ensure_test_database():
            print(f"created the test database ({VARIABLE}={POSTGRES})")
    except PostgresUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
