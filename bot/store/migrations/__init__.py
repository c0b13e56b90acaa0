"""The schema as numbered steps, and the runner that brings a database up to date.

Each ``NNNN_name.py`` module here is one step: a ``DESCRIPTION`` and its ``STATEMENTS``, SQL
templates whose ``{ts}`` and ``{serial_pk}`` each backend fills with its own column types.
Add a file with the next number; never edit one that has shipped, because databases out there
have already run it and record only its number.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.errors import StoreError
from bot.store.tx import Tx

_STEP_NAME = re.compile(r"(\d{4})_\w+")


@dataclass(frozen=True)
class Migration:
    """One schema step: its number, the description recorded with it, and its statements."""

    version: int
    description: str
    statements: tuple[str, ...]


def _load() -> tuple[Migration, ...]:
    """The steps in this package, in order; a gap or a repeated number is a packaging bug."""
    steps: list[Migration] = []
    for found in pkgutil.iter_modules(__path__):
        if match := _STEP_NAME.fullmatch(found.name):
            module = importlib.import_module(f"{__name__}.{found.name}")
            steps.append(Migration(int(match[1]), module.DESCRIPTION, tuple(module.STATEMENTS)))
    steps.sort(key=lambda step: step.version)
    versions = [step.version for step in steps]
    if versions != list(range(1, len(steps) + 1)):
        raise RuntimeError(f"schema steps must be numbered 1, 2, 3... in a row, not {versions}")
    return tuple(steps)


MIGRATIONS = _load()
LATEST_SCHEMA_VERSION = MIGRATIONS[-1].version


def current_version(tx: Tx) -> int:
    """The highest step applied to the database ``tx`` is on."""
    row = tx.one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return int(row[0]) if row else 0


def upgrade(tx: Tx, dialect: Mapping[str, str], clock: Callable[[], datetime]) -> None:
    """Apply, within ``tx``, every step the database lacks; the caller holds the migration
    lock. A database newer than this code is refused: its shape is unknown here."""
    tx.run(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
        "applied_at {ts} NOT NULL)".format(**dialect)
    )
    current = current_version(tx)
    latest = MIGRATIONS[-1].version
    if current > latest:
        raise StoreError(
            f"the database schema is at version {current}, newer than this "
            f"sms-bridge knows ({latest}); upgrade sms-bridge"
        )
    for step in MIGRATIONS:
        if step.version <= current:
            continue
        for statement in step.statements:
            tx.run(statement.format(**dialect))
        tx.run(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            (step.version, step.description, clock()),
        )
