"""A local stand-in for Slack's Socket Mode WebSocket, the URL apps.connections.open hands out.

It talks as Slack does: a ``hello`` first, then one JSON envelope per slash command,
interaction or event, each acknowledged by the app with ``{"envelope_id": ..., "payload"?}``.
Pings are answered (aiohttp's autoping), so slack-sdk's keep-alive works as against Slack.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.background import BackgroundServer
from tests.fakes.signing import event_body, slash_command_body
from tests.fakes.slack_server import SlackStandIn

APP_TOKEN = "xapp-1-A0APP-1000000000000-0123456789abcdef0123456789abcdef"
HELLO = {
    "type": "hello",
    "num_connections": 1,
    "debug_info": {"host": "applink-stand-in", "approximate_connection_time": 18060},
    "connection_info": {"app_id": "A0APP"},
}
# Interactions whose ack may carry an answer (errors for a form, options for a menu).
ANSWERABLE = frozenset({"view_submission", "block_suggestion"})


class SocketModeStandIn(BackgroundServer):
    """Serves ``/link``; registers its URL for ``app_token`` with the Slack stand-in.

    ``sent`` holds the envelopes delivered, ``acks`` what the app sent back, in order.
    ``stop_answering_close()`` makes it an edge that never finishes a close handshake.
    """

    def __init__(self, slack: SlackStandIn, app_token: str = APP_TOKEN) -> None:
        super().__init__()
        self.slack = slack
        self.app_token = app_token
        self.sent: list[dict[str, Any]] = []
        self.acks: list[dict[str, Any]] = []
        self.other: list[str] = []  # anything the app sent that is not an ack
        self.connections = 0  # WebSockets ever opened
        self._sockets: list[web.WebSocketResponse] = []
        self._ids = itertools.count(1)
        self._deaf = False
        self._released: asyncio.Event | None = None

    @property
    def link_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/link"

    def routes(self, app: web.Application) -> None:
        self._released = asyncio.Event()  # made on the server's own loop
        app.router.add_get("/link", self._link)

    def start(self) -> Self:
        super().start()
        self.slack.socket_urls[self.app_token] = self.link_url
        return self

    def stop(self) -> None:
        self.slack.socket_urls.pop(self.app_token, None)
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(15)
        super().stop()

    def reset(self) -> None:
        with self._changed:
            self.sent.clear()
            self.acks.clear()
            self.other.clear()
        self._answer_close_again()

    def stop_answering_close(self) -> None:
        """From now on, leave every close handshake the app starts unanswered."""
        self._deaf = True
        if self._loop is not None and self._released is not None:
            self._loop.call_soon_threadsafe(self._released.clear)

    def _answer_close_again(self) -> None:
        self._deaf = False
        if self._loop is not None and self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)

    # --- what tests do -------------------------------------------------------------------
    def send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> str:
        """Deliver one envelope to the newest connection; its envelope_id."""
        envelope: dict[str, Any] = {
            "envelope_id": f"env-{next(self._ids):06d}",
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason or ""
        assert self._loop is not None, "the Socket Mode stand-in is not running"
        asyncio.run_coroutine_threadsafe(self._deliver(envelope), self._loop).result(5)
        return str(envelope["envelope_id"])

    def command(
        self, text: str, user: str, channel: str, response_url: str, command: str = "/sms"
    ) -> str:
        """A slash command; Socket Mode carries the same fields as the HTTP form, as JSON."""
        fields = dict(parse_qsl(slash_command_body(text, user, channel, response_url, command)))
        return self.send("slash_commands", fields, accepts_response_payload=True)

    def interact(self, payload: dict[str, Any]) -> str:
        answerable = payload.get("type") in ANSWERABLE
        return self.send("interactive", payload, accepts_response_payload=answerable)

    def event(self, event: dict[str, Any], event_id: str, retry: int = 0) -> str:
        """An Events API callback; ``retry`` > 0 is Slack's redelivery after a missed ack."""
        body = json.loads(event_body(event, event_id))
        reason = "timeout" if retry else ""
        return self.send(
            "events_api",
            body,
            accepts_response_payload=False,
            retry_attempt=retry,
            retry_reason=reason,
        )

    def wait_connected(self, timeout: float = 10) -> None:
        self.wait_until(lambda: self._sockets, timeout, "a Socket Mode connection")

    def wait_for_ack(self, envelope_id: str, timeout: float = 5) -> dict[str, Any]:
        return self.wait_until(
            lambda: next((a for a in self.acks if a.get("envelope_id") == envelope_id), None),
            timeout,
            f"the ack of {envelope_id}; acks so far: {self.acks}",
        )

    def open_sockets(self) -> int:
        return len(self._sockets)

    # --- the server ----------------------------------------------------------------------
    async def _deliver(self, envelope: dict[str, Any]) -> None:
        if not self._sockets:
            raise AssertionError("no app is connected by Socket Mode")
        await self._sockets[-1].send_json(envelope)
        self.record(lambda: self.sent.append(envelope))

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        # autoclose off: whether (and when) a close handshake is answered is up to the test.
        ws = web.WebSocketResponse(autoclose=False)
        await ws.prepare(request)
        self.record(lambda: self._opened(ws))
        await ws.send_json(HELLO)
        try:
            await self._read(ws)
        finally:
            self.record(lambda: self._sockets.remove(ws))
        return ws

    def _opened(self, ws: web.WebSocketResponse) -> None:
        self._sockets.append(ws)
        self.connections += 1

    async def _read(self, ws: web.WebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.TEXT:
                self._received(str(message.data))
            elif message.type is WSMsgType.CLOSE:
                if self._deaf and self._released is not None:
                    await self._released.wait()
                await ws.close()
                return
            elif message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    def _received(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if isinstance(message, dict) and "envelope_id" in message:
            self.record(lambda: self.acks.append(message))
        else:
            self.record(lambda: self.other.append(data))

    async def _close_all(self) -> None:
        assert self._released is not None
        self._released.set()
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"stand-in stopping")
