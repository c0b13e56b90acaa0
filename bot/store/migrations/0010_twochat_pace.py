"""Schema 10: the shared 2Chat budget costs the same at any rate.

Schema 7's log was read whole at every start: a few dozen rows at 2Chat's 80 a minute, but
thousands at higher rates. Calls are now numbered (``twochat_limit.calls_made`` is the last
number given), so the call a minute's cap back is found by its number; the even pace is kept
as a debt in calls (``owed`` at ``owed_at``). The old log is dropped: a process still running
the old code fails its budget reads (a missing column, not an outage it would pace alone
through), so it starts no text until it is replaced (docs/operations.md).
"""

DESCRIPTION = "numbered 2Chat calls and the pace's debt, for a budget of constant cost"

STATEMENTS = (
    "DROP TABLE twochat_calls",
    """CREATE TABLE twochat_calls (
                seq BIGINT PRIMARY KEY,
                at {ts} NOT NULL
            )""",
    "CREATE INDEX twochat_calls_at ON twochat_calls (at)",
    "ALTER TABLE twochat_limit ADD COLUMN calls_made BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE twochat_limit ADD COLUMN owed DOUBLE PRECISION NOT NULL DEFAULT 0",
    "ALTER TABLE twochat_limit ADD COLUMN owed_at {ts}",
)
