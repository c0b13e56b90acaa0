"""``sms-bridge audit``: export every request, decision and send as CSV or JSON.

The export covers only the retained window: finished requests older than the policy's
``retention.keep`` (90 days unless set) are purged with their sends, so export regularly
(or keep longer) if an older record is needed.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any, TextIO

from bot.config import parse_duration
from bot.store import Store
from bot.store.requests import AUDIT_COLUMNS


def parse_since(text: str, now: datetime) -> datetime:
    """ "7d"/"12h" (a duration back from now) or an ISO-8601 date/time (UTC if naive)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


def export(store: Store, out: TextIO, *, since: datetime | None, fmt: str) -> int:
    """Write the audit rows, then the escalation steps (tiers texted, acks, stops) after
    them with their own columns; returns how many."""
    rows: list[dict[str, Any]] = store.audit_rows(since)
    rows += store.escalation_audit_rows(since)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
    else:
        # An empty export still says what it would hold: a header and no rows.
        columns = list(dict.fromkeys(column for row in rows for column in row)) or AUDIT_COLUMNS
        writer = csv.DictWriter(out, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
