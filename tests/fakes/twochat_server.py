"""A local stand-in for 2Chat's HTTP API as documented, on 127.0.0.1 in a background thread.

It checks the API key, the JSON and E.164 numbers like 2Chat does, records every send, and
can be scripted to fail, to answer slowly or never. It enforces the account's rate limit as
2Chat does: more than ``requests_per_minute`` calls (any endpoint) within a sliding window
are answered 429 with 2Chat's error body, and counted in ``refused``. It also keeps each
channel's SMS conversations (every accepted send is an outbound message; ``inbound`` adds a
reply) and serves them on 2Chat's read endpoints. Because it runs in its own thread and
loop, it serves sync tests, async tests and a separate app process alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.background import BackgroundServer

API_KEY = "test-2chat-key"
# 2Chat counts its rate limit per minute.
WINDOW_SECONDS = 60.0
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
DEFAULT_CHANNEL: dict[str, Any] = {
    "uuid": "SMS1",
    "phone_number": "+17137157533",
    "friendly_name": "main",
    "supports_sms_out": True,
    "enabled": True,
}


@dataclass
class Script:
    """A scripted answer for the next ``remaining`` sends (None: until reset)."""

    status: int
    body: bytes
    content_type: str
    remaining: int | None


@dataclass
class SendRecord:
    """What one POST /open/sms/send carried and got; the key itself is not kept."""

    body: dict[str, Any]
    api_key_present: bool
    api_key_valid: bool
    status: int | None = None
    # When the request arrived (time.monotonic), so tests can measure the pace of sends.
    arrived: float = field(default_factory=time.monotonic)


class TwoChatStandIn(BackgroundServer):
    """Speaks 2Chat's API. By default every valid send is queued: 202 with an ``SMO…`` id.

    ``respond`` scripts the answers of the next sends that carry the right key (key checks
    always happen first); ``set_delay`` and ``hang`` make sends slow or unanswered.
    """

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.sends: list[dict[str, Any]] = []
        self.records: list[SendRecord] = []
        self.requests: list[str] = []
        self.requests_per_minute: int | None = 80
        self.window = WINDOW_SECONDS
        self.retry_after: float | None = None
        self.refused: list[str] = []  # "METHOD /path" of every call answered 429
        self.refusals_expected = False  # a test that means to overrun the limit says so
        self._recent: deque[float] = deque()  # when the window's calls arrived
        self.channels: list[dict[str, Any]] = [copy.deepcopy(DEFAULT_CHANNEL)]
        self.channels_envelope: Literal["channels", "data"] = "channels"
        # channel uuid -> contact -> messages, oldest first, as GET /open/sms/messages has them
        self.conversations: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._scripts: list[Script] = []
        self._delay = 0.0
        self._hanging = False
        # Set (from the server loop) to let delayed or hung answers go at reset/stop.
        self._release = asyncio.Event()

    # --- what tests script -----------------------------------------------------------
    def respond(
        self,
        status: int,
        body: dict[str, Any] | str | None = None,
        *,
        content_type: str = "application/json",
        times: int | None = None,
    ) -> None:
        """Answer the next ``times`` sends (None: every following send) with this."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else (body or "").encode()
        with self._changed:
            self._scripts.append(Script(status, raw, content_type, times))

    def limit(
        self,
        per_minute: int | None,
        *,
        window: float = WINDOW_SECONDS,
        retry_after: float | None = None,
    ) -> None:
        """The account's limit: at most ``per_minute`` calls in any ``window`` seconds (60
        at 2Chat; shorter here lets a test see a minute's worth in seconds), None for none.
        ``retry_after`` adds a Retry-After header to the 429s (2Chat documents none)."""
        with self._changed:
            self.requests_per_minute = per_minute
            self.window = window
            self.retry_after = retry_after
            self._recent.clear()

    def set_delay(self, seconds: float) -> None:
        """Delay every send answer; an async sleep, so many sends can be in flight."""
        with self._changed:
            self._delay = seconds

    def hang(self) -> None:
        """Never answer sends (until ``reset`` or ``stop``): a 2Chat that went silent."""
        with self._changed:
            self._hanging = True

    def reset(self) -> None:
        """Back to defaults: no scripts, no delay, nothing recorded; hung sends are let go."""
        with self._changed:
            self.sends.clear()
            self.records.clear()
            self.requests.clear()
            self.requests_per_minute = 80
            self.window = WINDOW_SECONDS
            self.retry_after = None
            self.refused.clear()
            self.refusals_expected = False
            self._recent.clear()
            self.channels = [copy.deepcopy(DEFAULT_CHANNEL)]
            self.channels_envelope = "channels"
            self.conversations.clear()
            self._scripts.clear()
            self._delay = 0.0
            self._hanging = False
        self._let_go()

    def stop(self) -> None:
        self._let_go()
        super().stop()

    def wait_for_sends(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` sends arrived; fail with what did arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.sends) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {n} sends to 2Chat; "
                        f"got {len(self.sends)}: {self.sends}"
                    )
                self._changed.wait(remaining)
            return list(self.sends)

    def inbound(
        self, contact: str, text: str, *, channel: str = "SMS1", ts: int | None = None
    ) -> str:
        """An SMS from ``contact`` to ``channel``'s number; returns its ``SMI…`` uuid."""
        with self._changed:
            phone = next((c["phone_number"] for c in self.channels if c.get("uuid") == channel), "")
            message = self._add_message(channel, contact, "inbound", contact, phone, text, ts)
            self._changed.notify_all()
            return str(message["uuid"])

    def exchange(
        self,
        contact: str,
        *turns: tuple[Literal["inbound", "outbound"], str],
        channel: str = "SMS1",
    ) -> list[str]:
        """Several SMS between ``contact`` and ``channel``'s number added at once, so no
        reader sees only some of them (a reply and the text that followed it before the
        next poll); their uuids. Sent and received SMS alike are entries of the
        conversation, as GET /open/sms/messages lists them."""
        with self._changed:
            phone = next((c["phone_number"] for c in self.channels if c.get("uuid") == channel), "")
            uuids = []
            for direction, text in turns:
                source, destination = (
                    (contact, phone) if direction == "inbound" else (phone, contact)
                )
                message = self._add_message(channel, contact, direction, source, destination, text)
                uuids.append(str(message["uuid"]))
            self._changed.notify_all()
            return uuids

    def _add_message(
        self,
        channel: str,
        contact: str,
        direction: str,
        source: str,
        destination: str,
        text: str,
        ts: int | None = None,
    ) -> dict[str, Any]:
        """Append to a conversation (call with the lock held). Timestamps are whole seconds
        and, like a real conversation's, never go backwards."""
        thread = self.conversations.setdefault(channel, {}).setdefault(contact, [])
        if ts is None:
            ts = max(int(time.time()), (thread[-1]["timestamp"] + 1) if thread else 0)
        prefix = "SMI" if direction == "inbound" else "SMO"
        message = {
            "uuid": prefix + uuid.uuid4().hex,
            "source": source,
            "destination": destination,
            "text": text,
            "direction": direction,
            "timestamp": ts,
        }
        thread.append(message)
        return message

    def api_calls(self, prefix: str) -> list[str]:
        """Calls made so far whose "METHOD /path" starts with ``prefix``."""
        with self._changed:
            return [call for call in self.requests if call.startswith(prefix)]

    def _let_go(self) -> None:
        """Wake every answer waiting on the current release event, thread-safely."""
        with self._changed:
            old, self._release = self._release, asyncio.Event()
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(old.set)

    # --- HTTP --------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/open/sms/send", self._send)
        app.router.add_get("/open/info", self._info)
        app.router.add_get("/open/sms/channels", self._channels)
        app.router.add_get("/open/sms/conversations/{channel}", self._conversations)
        app.router.add_get("/open/sms/messages/{channel}/{contact}", self._messages)
        app.router.add_get("/open/sms/message/{uuid}", self._message)

    def _key_ok(self, request: web.Request) -> bool:
        return request.headers.get("X-User-API-Key") == self.api_key

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"error": True, "error_message": message}, status=status)

    def _note(self, request: web.Request) -> web.Response | None:
        """Log a call and count it against the account's limit; a 429 answer beyond it.

        https://developers.2chat.co/docs/API/api-response-codes: "429 Too many requests in
        too short a time. Check the API for your plan ... Trial accounts are limited to 30
        requests per minute"; the limit is the account's, so every endpoint counts (GET
        /open/info reports it as ``limits.requests_per_minute``). Errors carry a
        description in a message field; 2Chat's body is ``{"error": true,
        "error_message": ...}``, as for every other error here. No Retry-After is
        documented, so none is sent unless a test asks for one."""
        call = f"{request.method} {request.path}"
        now = time.monotonic()
        with self._changed:
            self.requests.append(call)
            while self._recent and now - self._recent[0] >= self.window:
                self._recent.popleft()
            limit = self.requests_per_minute
            if limit is not None and len(self._recent) >= limit:
                self.refused.append(call)
                self._changed.notify_all()
                headers = (
                    {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
                )
                return web.json_response(
                    {"error": True, "error_message": "Too many requests: rate limit exceeded"},
                    status=429,
                    headers=headers,
                )
            self._recent.append(now)
            self._changed.notify_all()
        return None

    async def _send(self, request: web.Request) -> web.Response:
        if (refused := self._note(request)) is not None:
            return refused
        raw = await request.text()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = None
        present = "X-User-API-Key" in request.headers
        entry = SendRecord(
            body=parsed if isinstance(parsed, dict) else {"_raw": raw},
            api_key_present=present,
            api_key_valid=self._key_ok(request),
        )
        with self._changed:
            self.sends.append(entry.body)
            self.records.append(entry)
            self._changed.notify_all()
            script = self._take_script() if entry.api_key_valid else None
            delay, hanging, release = self._delay, self._hanging, self._release
        await self._pause(delay, hanging, release)
        response = self._answer_send(entry, parsed, script)
        self.record(lambda: setattr(entry, "status", response.status))
        return response

    def _take_script(self) -> Script | None:
        """The scripted answer for this send, if any (call with the lock held)."""
        if not self._scripts:
            return None
        script = self._scripts[0]
        if script.remaining is not None:
            script.remaining -= 1
            if script.remaining <= 0:
                self._scripts.pop(0)
        return script

    @staticmethod
    async def _pause(delay: float, hanging: bool, release: asyncio.Event) -> None:
        if hanging:
            await release.wait()
        elif delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), delay)

    def _answer_send(self, entry: SendRecord, parsed: Any, script: Script | None) -> web.Response:
        if not entry.api_key_valid:
            return self._error(401, "Invalid API key")
        if script is not None:
            headers = {"Content-Type": script.content_type}
            return web.Response(status=script.status, body=script.body, headers=headers)
        if not isinstance(parsed, dict):
            return self._error(400, "Invalid JSON body")
        for key in ("from_number", "to_number"):
            value = parsed.get(key)
            if not isinstance(value, str) or not E164.match(value):
                return self._error(422, f"{key} must be a phone number in E.164 format")
        text = parsed.get("text")
        if not isinstance(text, str) or not text:
            return self._error(422, "text is required")
        from_number, to_number = parsed["from_number"], parsed["to_number"]
        with self._changed:
            channel = next(
                (c["uuid"] for c in self.channels if c.get("phone_number") == from_number),
                "SMS-unknown",
            )
            message = self._add_message(
                channel, to_number, "outbound", from_number, to_number, text
            )
        return web.json_response({"success": True, "message_id": message["uuid"]}, status=202)

    async def _info(self, request: web.Request) -> web.Response:
        if (refused := self._note(request)) is not None:
            return refused
        if not self._key_ok(request):
            return self._error(401, "Invalid API key")
        body: dict[str, Any] = {
            "success": True,
            "account": {"email": "test@example.com", "plan": "test"},
        }
        if self.requests_per_minute is not None:
            body["limits"] = {"requests_per_minute": self.requests_per_minute}
        return web.json_response(body)

    async def _channels(self, request: web.Request) -> web.Response:
        if (refused := self._note(request)) is not None:
            return refused
        if not self._key_ok(request):
            return self._error(401, "Invalid API key")
        channels = copy.deepcopy(self.channels)
        page = int(request.query.get("page_number", "0") or 0)
        if self.channels_envelope == "data":
            body: dict[str, Any] = {"success": True, "data": {"channels": channels}}
        else:
            body = {"success": True, "channels": channels}
        body.update(count=len(channels), page=page)
        return web.json_response(body)

    async def _conversations(self, request: web.Request) -> web.Response:
        if (refused := self._note(request)) is not None:
            return refused
        if not self._key_ok(request):
            return self._error(401, "Invalid API key")
        channel = request.match_info["channel"]
        with self._changed:
            threads = copy.deepcopy(self.conversations.get(channel, {}))
        found = [
            {
                "contact": contact,
                "channel_uuid": channel,
                "last_message_direction": messages[-1]["direction"],
                "last_message_ts": messages[-1]["timestamp"],
            }
            for contact, messages in threads.items()
            if messages
        ]
        found.sort(key=lambda conversation: conversation["last_message_ts"], reverse=True)
        return web.json_response({"success": True, "conversations": found})

    async def _messages(self, request: web.Request) -> web.Response:
        if (refused := self._note(request)) is not None:
            return refused
        if not self._key_ok(request):
            return self._error(401, "Invalid API key")
        channel, contact = request.match_info["channel"], request.match_info["contact"]
        before = request.query.get("before_ts")
        with self._changed:
            messages = copy.deepcopy(self.conversations.get(channel, {}).get(contact, []))
        if before:
            messages = [m for m in messages if m["timestamp"] < int(before)]
        return web.json_response({"success": True, "messages": messages[-50:]})

    async def _message(self, request: web.Request) -> web.Response:
        if (refused := self._note(request)) is not None:
            return refused
        if not self._key_ok(request):
            return self._error(401, "Invalid API key")
        wanted = request.match_info["uuid"]
        with self._changed:
            found = [
                {**message, "channel_uuid": channel, "status": "sent"}
                for channel, threads in self.conversations.items()
                for messages in threads.values()
                for message in messages
                if message["uuid"] == wanted
            ]
        if not found:
            return self._error(404, "message not found")
        return web.json_response({"success": True, "message": found[0]})
