"""Schema 6: the recipients a request named, as typed (JSON list), so that a send that runs
later (after an approval, or resumed) reads the Slack rosters among them again and texts
only who is on them then."""

DESCRIPTION = "request targets"

STATEMENTS = ("ALTER TABLE requests ADD COLUMN targets TEXT",)
