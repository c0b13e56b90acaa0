"""Schema 4: per-minute rate counters, and an index for the retention purge.

``rate_counts`` holds, per sender (``sender:U…``) and per phone number (``number:+…``), how
many SMS were requested in each minute and when the latest of them was, so a rate-limit check
reads at most an hour of minutes instead of every send of the hour.

The counters are filled from the sends already recorded, so limits hold across the upgrade.
Those rows are keyed by each request's exact time rather than its minute (the two backends
share no way to truncate a time in SQL); they count the same and are purged once an hour
old. A request recorded before the upgrade and rejected or expired after it keeps counting
until its hour is up: limits err on the side of refusing during that first hour.
"""

DESCRIPTION = "per-minute rate counters, retention index"

STATEMENTS = (
    """CREATE TABLE rate_counts (
                key TEXT NOT NULL,
                bucket {ts} NOT NULL,
                last_at {ts} NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (key, bucket)
            )""",
    "CREATE INDEX rate_counts_bucket ON rate_counts (bucket)",
    "CREATE INDEX requests_state_updated ON requests (state, updated_at)",
    "CREATE INDEX inbound_messages_seen ON inbound_messages (seen_at)",
    "CREATE INDEX inbound_messages_request ON inbound_messages (request_id)",
    "CREATE INDEX dedupe_keys_expires ON dedupe_keys (expires_at)",
    "CREATE INDEX reply_cursors_updated ON reply_cursors (updated_at)",
    """INSERT INTO rate_counts (key, bucket, last_at, count)
            SELECT 'sender:' || r.sender, r.created_at, r.created_at, COUNT(*)
            FROM requests r JOIN sends s ON s.request_id = r.id
            WHERE r.state NOT IN ('rejected', 'expired')
            GROUP BY r.sender, r.created_at""",
    """INSERT INTO rate_counts (key, bucket, last_at, count)
            SELECT 'number:' || s.number, r.created_at, r.created_at, COUNT(*)
            FROM requests r JOIN sends s ON s.request_id = r.id
            WHERE r.state NOT IN ('rejected', 'expired')
            GROUP BY s.number, r.created_at""",
)
