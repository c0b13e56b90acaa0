"""Schema 1: requests, their per-recipient sends, dedupe keys and leases.

The statement text is kept exactly as first shipped, indentation included: SQLite keeps it
verbatim in ``sqlite_master``, so old and new databases stay identical.
"""

DESCRIPTION = "requests, sends, dedupe keys, leases"

STATEMENTS = (
    """CREATE TABLE requests (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                sender TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                thread_ts TEXT,
                response_url TEXT,
                from_name TEXT NOT NULL,
                from_number TEXT NOT NULL,
                text TEXT NOT NULL,
                segments INTEGER NOT NULL,
                encoding TEXT NOT NULL,
                state TEXT NOT NULL,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                expires_at {ts},
                decided_by TEXT,
                decided_at {ts},
                decision_reason TEXT,
                approval_channel TEXT,
                approval_ts TEXT,
                dedupe_key TEXT UNIQUE
            )""",
    "CREATE INDEX requests_state_expires ON requests (state, expires_at)",
    "CREATE INDEX requests_sender_created ON requests (sender, created_at)",
    """CREATE TABLE sends (
                id {serial_pk},
                request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
                number TEXT NOT NULL,
                name TEXT,
                state TEXT NOT NULL,
                message_id TEXT,
                error TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                claimed_at {ts},
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            )""",
    "CREATE INDEX sends_request ON sends (request_id, id)",
    "CREATE INDEX sends_number_created ON sends (number, created_at)",
    "CREATE INDEX sends_state_claimed ON sends (state, claimed_at)",
    """CREATE TABLE dedupe_keys (
                key TEXT PRIMARY KEY,
                claimed_at {ts} NOT NULL,
                expires_at {ts} NOT NULL
            )""",
    """CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at {ts} NOT NULL
            )""",
)
