"""Schema 11: a page's Slack event is kept from before Slack is answered until it is paged.

Slack does not deliver an event again once it was answered, so a process killed between
answering an alert or an ``@sms-bridge page`` and recording the page lost that page. The
event is now recorded first; the row is marked done once the page is recorded (or refused,
and the requester told), and a sweeper pages what a crash left undone. ``tries`` counts the
takeovers, so two sweepers never take the same one.
"""

DESCRIPTION = "page events kept until paged, so a crash loses no page"

STATEMENTS = (
    """CREATE TABLE page_intake (
                key TEXT PRIMARY KEY,
                event TEXT NOT NULL,
                taken_at {ts} NOT NULL,
                tries INTEGER NOT NULL DEFAULT 0,
                done_at {ts}
            )""",
    "CREATE INDEX page_intake_undone ON page_intake (taken_at) WHERE done_at IS NULL",
)
