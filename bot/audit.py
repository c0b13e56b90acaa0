"""``sms-bridge audit``: export every request, decision and send as CSV or JSON."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any, TextIO

from bot.config import parse_duration
from bot.store import Store


def parse_since(text: str, now: datetime) -> datetime:
    """ "7d"/"12h" (a duration back from now) or an ISO-8601 date/time (UTC if naive)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


def export(store: Store, out: TextIO, *, since: datetime | None, fmt: str) -> int:
    """Write the audit rows; returns how many."""
    rows: list[dict[str, Any]] = store.audit_rows(since)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
    elif rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
