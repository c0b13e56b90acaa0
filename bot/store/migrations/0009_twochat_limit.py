"""Schema 9: the 2Chat account's per-minute limit as last read, shared by every process.

One row: ``per_minute`` is what ``GET /open/info`` said when a process last read it (NULL
until one has). Each process paces by it unless its policy sets ``requests_per_minute``, so
after a plan change the process that read the new limit is not the only one to keep it.
"""

DESCRIPTION = "2Chat account limit shared by every process"

STATEMENTS = (
    """CREATE TABLE twochat_limit (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                per_minute INTEGER CHECK (per_minute > 0),
                read_at {ts}
            )""",
    "INSERT INTO twochat_limit (id) VALUES (1)",
)
