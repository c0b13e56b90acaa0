"""From a page's trigger to its first text: a mention (``@sms-bridge page …``) or an alert
matching the channel's ``auto_page`` rule, posted as Slack posts Events API callbacks, to
the first 2Chat send of that page. Nothing else loads the app meanwhile; each page is
waited out before the next trigger, so each measures one incident's first text."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import aiohttp

from bench.harness import (
    ALERT_MATCH,
    CHANNEL,
    PAGE_GROUP_SIZE,
    USERS,
    App,
    BenchPolicy,
    percentile,
    session,
    wait_for,
)
from bench.report import Report, ms
from bench.standins import TimedSlack, TimedTwoChat
from tests.fakes.signing import event_body, signed_headers
from tests.fakes.slack_server import BOT_USER_ID

TRIGGER_P99_TARGET = 0.100
EVENT_IDS = itertools.count(1)


def trigger_event(kind: str, mark: str) -> dict[str, str]:
    """A mention of the bot asking for a page, or an alert its ``auto_page`` rule matches;
    ``mark`` appears in the page's texts, to find its first one at 2Chat."""
    ts = f"{time.time():.6f}"
    if kind == "mention":
        text = f"<@{BOT_USER_ID}> page db-1 is down {mark}"
        return {"type": "app_mention", "user": USERS[0], "text": text, "ts": ts,
                "event_ts": ts, "channel": CHANNEL}  # fmt: skip
    return {"type": "message", "user": USERS[1], "text": f"{ALERT_MATCH} db-1 down {mark}",
            "ts": ts, "event_ts": ts, "channel": CHANNEL, "channel_type": "channel"}  # fmt: skip


async def one_trigger(
    http: aiohttp.ClientSession, app: App, twochat: TimedTwoChat, kind: str, index: int
) -> float:
    """Post one trigger; seconds from the POST to its page's first 2Chat send (inf if none
    came within 10 s), after waiting for the whole page to go out."""
    mark = f"mark{kind[0]}{index:04d}"
    body = event_body(trigger_event(kind, mark), f"Ev{next(EVENT_IDS):08d}")
    headers = {**signed_headers(body), "Content-Type": "application/json"}
    began = time.monotonic()
    async with http.post(app.url + "/slack/events", data=body.encode(), headers=headers) as r:
        await r.read()
    await wait_for(lambda: twochat.first_send_containing(mark) is not None, timeout=10)
    first = twochat.first_send_containing(mark)
    await wait_for(lambda: twochat.sends_containing(mark) >= PAGE_GROUP_SIZE, timeout=10)
    return float("inf") if first is None else first - began


async def page_trigger(
    work: Path, report: Report, per_kind: int, database: str = "SQLite", url: str | None = None
) -> None:
    """``per_kind`` mentions and as many alerts, alternating, each paging the on-call group
    (2Chat answering in 0 s); the latency of each page's first text."""
    slack, twochat = TimedSlack(), TimedTwoChat()
    app = App(work / f"trigger-{database}", slack, twochat, url, BenchPolicy(page_channel=True))
    latencies: dict[str, list[float]] = {"mention": [], "alert": []}
    with slack, twochat, app:
        async with session(1) as http:
            await one_trigger(http, app, twochat, "mention", 0)  # warm-up: auth.test, users
            for index in range(1, per_kind + 1):
                for kind, found in latencies.items():
                    found.append(await one_trigger(http, app, twochat, kind, index))
        report.app_done(app, f"page trigger, {database}")
    every = [lat for found in latencies.values() for lat in found]
    p99 = percentile(every, 99)
    detail = "; ".join(
        f"{kind} p50 {ms(percentile(found, 50))}, p99 {ms(percentile(found, 99))}"
        for kind, found in latencies.items()
    )
    report.add(
        f"page trigger to its first 2Chat call, {database} ({len(every)} pages of "
        f"{PAGE_GROUP_SIZE}: mentions and auto-page alerts)",
        f"p99 {ms(p99)}, max {ms(max(every))} ({detail})",
        f"p99 < {ms(TRIGGER_P99_TARGET)}",
        p99 < TRIGGER_P99_TARGET,
    )
