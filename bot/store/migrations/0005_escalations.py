"""Schema 5: escalation ladders, their reply codes and every step they took.

``escalations`` has one row per escalating page, keyed by the page's request; its
``next_tier_at`` is the durable timer the sweepers race for with one conditional update, so
a restart or a second process neither loses nor repeats a tier. ``escalation_codes`` keeps
each reply code from being handed out again while its page is open or for 72 hours after it
was issued. ``escalation_steps`` is the ladder's history: tiers texted, acks (the first and
the late ones), stops; the board and the audit export read it.
"""

DESCRIPTION = "escalation ladders, reply codes, escalation steps"

STATEMENTS = (
    """CREATE TABLE escalations (
                id TEXT PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                thread_ts TEXT,
                code TEXT NOT NULL,
                state TEXT NOT NULL,
                tier INTEGER NOT NULL,
                round INTEGER NOT NULL,
                next_tier_at {ts},
                acked_by TEXT,
                acked_via TEXT,
                acked_at {ts},
                closed_by TEXT,
                board_ts TEXT,
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL
            )""",
    "CREATE INDEX escalations_due ON escalations (state, next_tier_at)",
    "CREATE INDEX escalations_code ON escalations (code)",
    "CREATE INDEX escalations_board ON escalations (channel_id, board_ts)",
    """CREATE TABLE escalation_codes (
                code TEXT PRIMARY KEY,
                issued_at {ts} NOT NULL
            )""",
    """CREATE TABLE escalation_steps (
                id {serial_pk},
                escalation_id TEXT NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
                at {ts} NOT NULL,
                kind TEXT NOT NULL,
                tier INTEGER,
                round INTEGER,
                request_id TEXT,
                actor TEXT,
                via TEXT
            )""",
    "CREATE INDEX escalation_steps_escalation ON escalation_steps (escalation_id)",
    "CREATE INDEX escalation_steps_request ON escalation_steps (request_id)",
)
