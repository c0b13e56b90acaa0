"""Scenarios of one ``/sms`` to a group: the 100-member fan-out (uncapped and paced), a
5,000-member page, and a page while the reply poller shares a capped 2Chat account."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from pathlib import Path

from bench.harness import (
    GROUP,
    GROUP_NUMBERS,
    USERS,
    App,
    BenchPolicy,
    Requester,
    page,
    page_numbers,
    session,
    wait_for,
    warm_up,
)
from bench.report import Report
from bench.standins import WINDOW_SECONDS, Edit, TimedSlack, TimedTwoChat, most_in_window
from bot.core.budget import DEFAULT_BURST
from tests.fakes.slack_server import MAX_MESSAGE_TEXT, MAX_SECTION_TEXT
from tests.fakes.twochat_server import DEFAULT_CHANNEL

BIG_GROUP = "bench5000"
BIG_PAGE_MEMBERS = 5000
BIG_PAGE_SECONDS = 30.0  # target: POST to the final edit
BIG_PAGE_TIMEOUT = 120.0  # a slow app reports NO instead of hanging the run
BIG_PAGE_RSS_MIB = 120.0
# Slack allows about one chat.update a second per message; the app's own clock decides
# when, so allow it 50 ms of jitter against the stand-in's.
EDIT_GAP_SECONDS = 0.95
POLL_CAP = 300  # requests_per_minute for the polling scenario
POLLED_FROM_NUMBERS = 50
POLL_REPLIES = 10  # inbound SMS the poller finds and relays
# The page goes once the poller is this far into its second round of the from-numbers.
PAGE_AFTER_POLL_ROUNDS = 1.5


async def fan_out(work: Path, report: Report, cap: int | None) -> None:
    """One /sms to the 100-member group with 2Chat at 300 ms per call."""
    label = f"fanout-{cap or 'uncapped'}"
    slack, twochat = TimedSlack(), TimedTwoChat(delay=0.3, cap=cap)
    app = App(work / label, slack, twochat, policy=BenchPolicy(requests_per_minute=cap))
    with slack, twochat, app:
        async with session(2) as http:
            client = Requester(http, app.url, slack.response_url("bench"))
            await warm_up(client, slack)
            await asyncio.sleep(1.0)  # the warm-up's token is back in the pacer's bucket
            base = len(twochat.arrivals)
            budget = 30 + (len(GROUP_NUMBERS) * 60 / cap if cap else 0)
            done = await page(client, slack, GROUP, budget)
        report.app_done(app, label)
    arrivals = twochat.arrivals[base:]
    if done.final is None:
        report.add(f"fan-out to {len(GROUP_NUMBERS)}", "did not finish in time", "", False)
        return
    all_sent = done.all_sent and len(arrivals) == len(GROUP_NUMBERS)
    if cap is None:
        report.add(
            f"fan-out: page a {len(GROUP_NUMBERS)}-member group, 2Chat 300 ms/call, no cap",
            done.describe(),
            "< 2 s",
            done.took < 2.0 and all_sent,
        )
        return
    # The bucket starts full (DEFAULT_BURST starts at once); the rate is what follows.
    paced = arrivals[DEFAULT_BURST:]
    rate = (len(paced) - 1) * 60 / (paced[-1] - paced[0]) if len(paced) > 1 else float("nan")
    over_cap = max(0, most_in_window(arrivals, WINDOW_SECONDS) - cap)
    deviation = (rate - cap) / cap
    report.add(
        f"fan-out with requests_per_minute: {cap} ({len(arrivals)} sends)",
        f"{rate:.0f}/min after the {DEFAULT_BURST}-call burst ({deviation:+.1%}); "
        f"{over_cap} over the cap in any 60 s; {twochat.refusals()} HTTP 429; "
        f"{done.headline.split(' — ')[0]}",
        "within 5% of cap, no 429",
        abs(deviation) <= 0.05 and over_cap == 0 and twochat.refusals() == 0 and all_sent,
    )


def edit_pace(slack: TimedSlack, final: Edit | None) -> tuple[int, int, float]:
    """Edits of the progress reply (the final edit's message, else the most edited one):
    how many, the most in any 1 s, and the shortest gap between two (inf for fewer than 2)."""
    arrivals = dict(slack.update_arrivals)
    if final is not None:
        times = arrivals.get(final.ts, [])
    else:
        times = max(arrivals.values(), key=len, default=[])
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(times))]
    return len(times), most_in_window(times, 1.0), min(gaps, default=float("inf"))


def size_row(report: Report, scenario: str, slack: TimedSlack) -> None:
    """The largest message and section the app sent Slack in a scenario, refused or not."""
    text, section = slack.longest_text, slack.longest_section
    refused = len(slack.limit_violations)
    sections = f"section text {section:,}" if section else "no section blocks"
    report.add(
        f"{scenario}: longest text posted or updated",
        f"message text {text:,} characters, {sections} ({refused} refused by Slack for size)",
        f"< {MAX_MESSAGE_TEXT:,} and < {MAX_SECTION_TEXT:,}",
        text < MAX_MESSAGE_TEXT and section < MAX_SECTION_TEXT and not refused,
    )


async def big_page(work: Path, report: Report, members: int = BIG_PAGE_MEMBERS) -> None:
    """One /sms to a ``members``-member group, 2Chat at 300 ms per call and no per-minute
    cap: how long the page takes, what it costs in memory, and whether its progress reply
    keeps to Slack's edit rate and message sizes."""
    label = f"page-{members}"
    numbers = page_numbers(members)
    policy = BenchPolicy(groups={BIG_GROUP: numbers})
    slack, twochat = TimedSlack(), TimedTwoChat(delay=0.3)
    with slack, twochat, App(work / label, slack, twochat, policy=policy) as app:
        async with session(2) as http:
            client = Requester(http, app.url, slack.response_url("bench"))
            await warm_up(client, slack)
            base = len(twochat.sent_to())
            done = await page(client, slack, BIG_GROUP, BIG_PAGE_TIMEOUT)
            await asyncio.sleep(0.5)  # a send arriving twice would come after the final edit
        rss = report.app_done(app, label)
    scenario = f"{members:,}-member page"
    sent = Counter(number for number, _ in twochat.sent_to()[base:])
    once = sum(1 for number in numbers if sent[number] == 1)
    report.add(
        f"{scenario}, 2Chat 300 ms/call, no cap: POST to the final edit",
        done.describe() if done.final else f"no final edit within {BIG_PAGE_TIMEOUT:.0f} s",
        f"< {BIG_PAGE_SECONDS:.0f} s, *all sent*",
        done.took < BIG_PAGE_SECONDS and done.all_sent,
    )
    report.add(
        f"{scenario}: 2Chat sends arrived",
        f"{sum(sent.values()):,} sends, {once:,}/{members:,} numbers exactly once",
        f"{members:,}, each number once",
        sum(sent.values()) == members and once == members,
    )
    report.add(
        f"{scenario}: peak RSS of the app (VmHWM)",
        f"{rss:.0f} MiB",
        f"< {BIG_PAGE_RSS_MIB:.0f} MiB",
        rss < BIG_PAGE_RSS_MIB,
    )
    edits, most, gap = edit_pace(slack, done.final)
    report.add(
        f"{scenario}: chat.update of the progress reply",
        f"{edits} edits, at most {most} in any 1 s, shortest gap {gap:.2f} s",
        f"≤ 1 a second (gap ≥ {EDIT_GAP_SECONDS} s)",
        most <= 1 and gap >= EDIT_GAP_SECONDS,
    )
    size_row(report, scenario, slack)


def polled_from_numbers(count: int) -> dict[str, str]:
    """``count - 1`` from-numbers beside "main", each one a 2Chat SMS channel."""
    return {f"poll{i:02d}": f"+1713715{7600 + i}" for i in range(1, count)}


def channels(from_numbers: dict[str, str]) -> list[dict[str, object]]:
    """2Chat's channel list for the from-numbers, "main" first as channel SMS1."""
    return [
        {**DEFAULT_CHANNEL, "uuid": f"SMS{i}", "phone_number": number, "friendly_name": name}
        for i, (name, number) in enumerate(from_numbers.items(), start=1)
    ]


async def polling_page(work: Path, report: Report, cap: int = POLL_CAP) -> None:
    """The reply poller and a page sharing a 2Chat account capped at ``cap`` a minute.

    One text from each of 50 from-numbers gives the poller 50 conversations to read (and a
    few get a reply to relay); halfway through its second round, the 100-member group is
    paged. The stand-in answers 429 to any request over the cap in the trailing minute, so
    every 2Chat call the app makes, sends and polls alike, must go through its pacer."""
    extra = polled_from_numbers(POLLED_FROM_NUMBERS)
    policy = BenchPolicy(requests_per_minute=cap, from_numbers=extra, poll_interval="1s")
    slack, twochat = TimedSlack(), TimedTwoChat(delay=0.05, cap=cap)
    twochat.channels = channels(policy.from_numbers_all())
    label = "polling-page"
    with slack, twochat, App(work / label, slack, twochat, policy=policy) as app:
        async with session(10) as http:
            client = Requester(http, app.url, slack.response_url("bench"))
            started = time.monotonic()
            names = list(policy.from_numbers_all())

            async def seed(i: int) -> None:
                await client.sms(USERS[i % 10], f"from:{names[i]} {GROUP_NUMBERS[i]} seed {i}")

            await asyncio.gather(*(seed(i) for i in range(len(names))))
            seeded = await wait_for(lambda: slack.outcomes() >= len(names), timeout=60)
            for i in range(POLL_REPLIES):  # replies the poller will find and relay
                twochat.inbound(GROUP_NUMBERS[i], f"reply {i}", channel=f"SMS{i + 1}")
            polled = PAGE_AFTER_POLL_ROUNDS * len(names)
            await wait_for(lambda: len(twochat.poll_calls()) >= polled, timeout=45)
            polls_before = len(twochat.poll_calls())
            done = await page(client, slack, GROUP, timeout=60)
            polls_during = len(twochat.poll_calls()) - polls_before
        report.app_done(app, label)
    took = time.monotonic() - started
    calls = list(twochat.calls)
    most = most_in_window([call.when for call in calls], WINDOW_SECONDS)
    refused = twochat.refusals()
    scenario = f"reply polling ({len(names)} from-numbers, every 1 s) and a page"
    report.add(
        f"{scenario}, requests_per_minute {cap}: 2Chat calls",
        f"{len(calls)} calls in {took:.0f} s, at most {most} in any 60 s; {refused} HTTP 429",
        f"no 429, ≤ {cap} in any 60 s",
        refused == 0 and most <= cap,
    )
    polls = Counter(call.call.split("/")[3] for call in twochat.poll_calls())
    relayed = len(slack.relayed)
    report.add(
        f"{scenario}: polling ran",
        f"{sum(polls.values())} polling calls ({polls['conversations']} conversations, "
        f"{polls['messages']} messages, {polls['channels']} channel lists), "
        f"{polls_during} during the page; {relayed}/{POLL_REPLIES} replies relayed",
        "> 0 polling calls",
        sum(polls.values()) > 0,
    )
    outcome = done.describe() if done.final else "no final edit within 60 s"
    if not seeded:
        outcome += f"; the {len(names)} seed texts did not all complete in 60 s"
    report.add(
        f"{scenario}: the page ({len(GROUP_NUMBERS)} members) while polling",
        outcome,
        "*all sent*",
        done.all_sent,
    )


async def shared_page(work: Path, report: Report, url: str, cap: int) -> None:
    """Two app processes on one Postgres page the 100-member group at the same moment under
    an account limit of ``cap`` a minute, which the 2Chat stand-in enforces with 429s: they
    share one budget, so the 200 texts take (200 / cap) minutes, no less and not much more."""
    slack, twochat = TimedSlack(), TimedTwoChat(cap=cap)
    policy = BenchPolicy(requests_per_minute=cap)
    apps = [App(work / f"shared-{name}", slack, twochat, url, policy) for name in "ab"]
    with slack, twochat, apps[0], apps[1]:
        async with session(2) as http:
            clients = [Requester(http, app.url, slack.response_url("bench")) for app in apps]
            started = time.monotonic()
            total = 2 * len(GROUP_NUMBERS)
            budget = 30 + total * 60 / cap
            done = await asyncio.gather(*(page(c, slack, GROUP, budget) for c in clients))
            await wait_for(lambda: len(twochat.arrivals) >= total, timeout=budget, poll=0.05)
        for app, name in zip(apps, "ab", strict=True):
            report.app_done(app, f"shared page, {name}")
    arrivals = twochat.arrivals
    took = (arrivals[-1] - started) if arrivals else float("inf")
    floor_s = total * 60 / cap
    all_sent = all(d.all_sent for d in done) and len(arrivals) == total
    report.add(
        f"two processes page {total} under an enforced {cap}/min (N/L = {floor_s:.0f} s)",
        f"last text {took:.1f} s after the pages ({took / floor_s - 1:+.1%} of N/L); "
        f"{twochat.refusals()} HTTP 429; {len(arrivals)} texts",
        "within N/L + 5 %, no 429",
        took <= floor_s * 1.05 and twochat.refusals() == 0 and all_sent,
    )
