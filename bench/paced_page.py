"""Not a benchmark: shows a fault the capped fan-out exposes. ``python -m bench.paced_page``

``Workflow.run_sends`` claims every send of a page ("sending", ``claimed_at`` = now) before
the fan-out starts, and the pacer then holds later sends back for up to a minute or more.
The sweeper takes any send "sending" for longer than connect + read timeout + 2 s for one
a crash left behind and reports it as *outcome unknown* (with a Retry button), while the
fan-out goes on to send it anyway. This runs a 100-member page at 300/min with short
timeouts (stale after 5 s instead of the default 22 s, which 2Chat's usual 80/min cap
exceeds just the same) and counts what 2Chat got against what Slack was told.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from bench.harness import GROUP, App, BenchPolicy, Requester, page, session
from bench.standins import TimedSlack, TimedTwoChat


class ShortTimeoutApp(App):
    """Stale after 1 + 2 + 2 = 5 s, swept every second, so the fault shows in ~20 s."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            TWOCHAT_READ_TIMEOUT="2", TWOCHAT_CONNECT_TIMEOUT="1", SWEEP_INTERVAL_SECONDS="1"
        )
        return env


async def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="sms-bridge-paced-"))
    slack, twochat = TimedSlack(), TimedTwoChat(delay=0.05)
    try:
        policy = BenchPolicy(requests_per_minute=300)
        with slack, twochat, ShortTimeoutApp(work, slack, twochat, policy=policy) as app:
            async with session(2) as http:
                requester = Requester(http, app.url, slack.response_url("paced"))
                done = await page(requester, slack, GROUP, timeout=90)
                await asyncio.sleep(1)
            accepted = app.log().count(" queued as ")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    unknown = [text for text in slack.failed_replies if "outcome unknown" in text]
    final = done.headline or "no final edit within 90 s"
    print(f"2Chat received {len(twochat.arrivals)} sends and accepted {accepted}")
    print(f"Slack was told: {final}")
    print(f"'outcome unknown' thread replies from the sweeper: {len(unknown)}")
    if unknown:
        print(f"  e.g. {unknown[0]}")
    return 1 if unknown else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
