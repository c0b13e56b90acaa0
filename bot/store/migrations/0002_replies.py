"""Schema 2: what the reply poller remembers, opt-outs, and page acknowledgements.

The statement text is kept exactly as first shipped, indentation included: SQLite keeps it
verbatim in ``sqlite_master``, so old and new databases stay identical.
"""

DESCRIPTION = "reply cursors, inbound messages, opt-outs, acknowledgements"

STATEMENTS = (
    """CREATE TABLE reply_cursors (
                channel_uuid TEXT NOT NULL,
                contact TEXT NOT NULL,
                marker TEXT NOT NULL,
                last_message_uuid TEXT,
                last_message_ts BIGINT,
                updated_at {ts} NOT NULL,
                PRIMARY KEY (channel_uuid, contact)
            )""",
    """CREATE TABLE inbound_messages (
                uuid TEXT PRIMARY KEY,
                channel_uuid TEXT NOT NULL,
                contact TEXT NOT NULL,
                sent_at {ts},
                request_id TEXT,
                kind TEXT NOT NULL,
                seen_at {ts} NOT NULL
            )""",
    """CREATE TABLE opt_outs (
                number TEXT PRIMARY KEY,
                since {ts} NOT NULL,
                via TEXT NOT NULL
            )""",
    """CREATE TABLE acknowledgements (
                request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
                number TEXT NOT NULL,
                at {ts} NOT NULL,
                via TEXT,
                PRIMARY KEY (request_id, number)
            )""",
    """CREATE TABLE ack_summaries (
                request_id TEXT PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
                channel_id TEXT NOT NULL,
                ts TEXT NOT NULL
            )""",
    "CREATE INDEX sends_message_id ON sends (message_id)",
)
