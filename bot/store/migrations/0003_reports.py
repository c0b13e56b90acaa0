"""Schema 3: what a request's thread shows, kept so another process can finish it.

``progress_ts`` is the live reply edited while a request is sent, so a process that resumes a
request left behind by a crash edits that reply instead of leaving it "Sending…" for ever.
``report_pending`` says the outcome has not reached the thread yet (Slack failed), so the
sweeper posts it later.
"""

DESCRIPTION = "per-request progress message and pending report"

STATEMENTS = (
    """CREATE TABLE request_reports (
                request_id TEXT PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
                progress_ts TEXT,
                report_pending INTEGER NOT NULL DEFAULT 0,
                updated_at {ts} NOT NULL
            )""",
)
