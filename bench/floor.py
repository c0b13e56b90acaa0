"""The floor sms-bridge is measured against: the least an ack-first Bolt relay can do.

``/sms +447700900123 text``: ack at once, then one 2Chat POST and one ``chat.postMessage``
with the outcome. No policy, no store, no pacing, no retries, so whatever sms-bridge spends
beyond this per send is the price of those. Run by ``bench.run`` with sms-bridge's own
environment (SLACK_*, TWOCHAT_*, PORT); not part of the app.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

FROM_NUMBER = "+17137157533"


def build(env: dict[str, str], http: aiohttp.ClientSession, tasks: set[object]) -> web.Application:
    """The relay: Bolt for the signature check and the ack, one task per command."""
    client = AsyncWebClient(env["SLACK_BOT_TOKEN"], base_url=env["SLACK_API_URL"], session=http)
    app = AsyncApp(client=client, signing_secret=env["SLACK_SIGNING_SECRET"])

    async def relay(body: dict[str, str]) -> None:
        number, _, text = body["text"].partition(" ")
        async with http.post(
            f"{env['TWOCHAT_API_URL'].rstrip('/')}/open/sms/send",
            json={"from_number": FROM_NUMBER, "to_number": number, "text": text},
            headers={"X-User-API-Key": env["TWOCHAT_API_KEY"]},
        ) as answer:
            ok = answer.status < 300
        await client.chat_postMessage(
            channel=body["channel_id"],
            thread_ts="1700000000.000001",
            text=f":white_check_mark: sent to {number}" if ok else f"failed ({answer.status})",
        )

    @app.command("/sms")
    async def sms(ack: AsyncAck, body: dict[str, str]) -> None:
        await ack()
        task = asyncio.get_running_loop().create_task(relay(body))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    web_app = app.web_app(path="/slack/events")
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def main() -> None:
    async with aiohttp.ClientSession() as http:
        runner = web.AppRunner(build(dict(os.environ), http, set()), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(os.environ["PORT"])).start()
        await asyncio.Event().wait()  # until SIGTERM


if __name__ == "__main__":
    asyncio.run(main())
