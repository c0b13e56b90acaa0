"""Schema 7: the log of 2Chat calls, so every process sharing the database shares one budget.

2Chat limits an account's calls per minute. ``twochat_calls`` holds the calls of the last
minute (when, and their priority); a process takes its next start by reading it and adding a
row under one lock, and deletes what is older than a minute as it goes.
"""

DESCRIPTION = "2Chat call log for the shared per-minute budget"

STATEMENTS = (
    """CREATE TABLE twochat_calls (
                at {ts} NOT NULL,
                priority INTEGER NOT NULL
            )""",
    "CREATE INDEX twochat_calls_at ON twochat_calls (at)",
)
