"""CPU per 2Chat send call: raw httpx, raw aiohttp, and the bridge's own client
(``bot/sms/twochat.py``, on aiohttp): ``.venv/bin/python -m bench.http_clients``.

The profile of the throughput run put the 2Chat call among the largest costs of a send;
this isolates the HTTP client, and checks that ``TwoChatClient.send_sms`` (error mapping,
whole-call limit and logging included) stays close to a bare aiohttp call. The 2Chat
stand-in runs in its own process so only the client's CPU time is counted. Logging is left
unconfigured, so the client's INFO line per send is not written anywhere.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from bench.harness import ROOT
from bench.standins import TWOCHAT_KEY
from bot.sms.twochat import TwoChatClient

BODY = {"from_number": "+17137157533", "to_number": "+447700900001", "text": "bench"}
CALLS = 3000

STAND_IN = (
    "import time\n"
    "from bench.standins import TimedTwoChat\n"
    "server = TimedTwoChat().start()\n"
    "print(server.url, flush=True)\n"
    "time.sleep(300)\n"
)


async def cpu_per_call(call: Callable[[], Awaitable[None]], concurrency: int) -> float:
    """CPU seconds of this process per call, ``CALLS`` calls with ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one() for _ in range(200)))  # warm up: connections, caches
    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(CALLS)))
    return (time.process_time() - started) / CALLS


async def compare(url: str) -> None:
    headers = {"X-User-API-Key": TWOCHAT_KEY}
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    print(
        "| concurrency | httpx.AsyncClient | aiohttp.ClientSession "
        "| new aiohttp session per call | TwoChatClient.send_sms |"
    )
    print("|---|---|---|---|---|")
    for concurrency in (1, 20):
        async with (
            httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client,
            aiohttp.ClientSession(url, headers=headers) as session,
            TwoChatClient(TWOCHAT_KEY, url) as twochat,
        ):

            async def with_httpx() -> None:
                (await client.post("/open/sms/send", json=BODY)).json()

            async def with_aiohttp() -> None:
                async with session.post("/open/sms/send", json=BODY) as response:
                    await response.json()

            async def with_new_session() -> None:
                # What slack-sdk's AsyncWebClient does for every call when given no session.
                async with (
                    aiohttp.ClientSession(url, headers=headers) as fresh,
                    fresh.post("/open/sms/send", json=BODY) as response,
                ):
                    await response.json()

            async def with_twochat() -> None:
                await twochat.send_sms(BODY["from_number"], BODY["to_number"], BODY["text"])

            results = [
                await cpu_per_call(call, concurrency)
                for call in (with_httpx, with_aiohttp, with_new_session, with_twochat)
            ]
        cells = " | ".join(f"{seconds * 1e6:.0f} µs" for seconds in results)
        print(f"| {concurrency} | {cells} |", flush=True)


def main() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", STAND_IN], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url:
            raise SystemExit("the 2Chat stand-in did not start")
        print(f"CPU per POST /open/sms/send to a local 2Chat stand-in ({CALLS} calls)\n")
        asyncio.run(compare(url))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
