"""A 2Chat that answers a send with a 202 one byte at a time: every read is quick, the whole
answer is not. Only the send endpoint exists; anything else is a 404, as for an unknown path."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from tests.fakes.background import BackgroundServer


class DrippingTwoChat(BackgroundServer):
    """Answers POST /open/sms/send with 202 and a message id, ``gap`` seconds per byte."""

    def __init__(self, gap: float) -> None:
        super().__init__()
        self.gap = gap
        self.sends = 0
        self.answered = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/open/sms/send", self._send)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.record(lambda: setattr(self, "sends", self.sends + 1))
        body = json.dumps({"success": True, "message_id": "SMOdripped"}).encode()
        response = web.StreamResponse(
            status=202,
            headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
        )
        await response.prepare(request)
        for byte in body:
            await response.write(bytes([byte]))
            await asyncio.sleep(self.gap)
        await response.write_eof()
        self.record(lambda: setattr(self, "answered", self.answered + 1))
        return response
