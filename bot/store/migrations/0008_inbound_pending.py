"""Schema 8: an inbound SMS is recorded before it is acted on, and marked done after.

``pending`` holds what acting on the SMS needs (its text, the from-number, the replier's
name) until the action is done, then NULL. A process killed in between leaves the row
pending, and the next poll finishes it: a STOP is never lost to a crash. Rows from before
this step were acted on already, so they start done.
"""

DESCRIPTION = "inbound SMS pending until acted on"

STATEMENTS = ("ALTER TABLE inbound_messages ADD COLUMN pending TEXT",)
