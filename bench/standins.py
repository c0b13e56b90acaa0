"""The test suite's Slack and 2Chat stand-ins, timed and measured for the benchmark.

They run in threads of the load generator's process; everything they note is appended
from their own loops and read here with ``list()`` copies, which the GIL keeps whole.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.slack_server import MESSAGE_METHODS, SlackStandIn, items_of, parsed_json, text_of
from tests.fakes.twochat_server import TwoChatStandIn

TWOCHAT_KEY = "bench-2chat-key-0123456789abcdef"
# 2Chat's per-minute limit is counted over a trailing window of this many seconds.
WINDOW_SECONDS = 60.0
# The limit an uncapped account reports: the app paces every deployment under some limit (30 a
# minute while 2Chat names none), so a stand-in that named none would hold every run to that.
UNCAPPED_PER_MINUTE = 1_000_000
# The 2Chat endpoints the reply poller reads (everything but sending and /open/info).
POLL_PATHS = ("/open/sms/channels", "/open/sms/conversations/", "/open/sms/messages/")


@dataclass(frozen=True)
class Edit:
    """One chat.update Slack accepted: when, of which message, and its new text."""

    when: float
    ts: str
    text: str


def section_lengths(blocks: Any) -> Iterator[int]:
    """The length of every section text and field in a message's blocks (Slack refuses a
    section over 3,000 characters)."""
    for block in items_of(parsed_json(blocks)):
        if isinstance(block, dict) and block.get("type") == "section":
            yield len(text_of(block.get("text")))
            yield from (len(text_of(item)) for item in items_of(block.get("fields")))


class TimedSlack(SlackStandIn):
    """The Slack stand-in, noting when each outcome reaches Slack (a send only counts as
    completed once its thread reply is posted, as a user would see it), every edit of every
    message, and the largest text the app tried to post, refused or not."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sent_replies: list[float] = []  # a ":white_check_mark:" thread reply
        self.failed_replies: list[str] = []  # any other outcome reply
        self.relayed: list[str] = []  # an SMS reply the poller posted in a thread
        self.edits: list[Edit] = []
        self.update_arrivals: dict[str, list[float]] = {}  # message ts -> each chat.update
        self.longest_text = 0  # characters in a message's top-level text
        self.longest_section = 0  # characters in one section block's text or field

    def _answer(
        self, method: str, args: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method in MESSAGE_METHODS:
            self._measure(args)
        if method == "chat.update":
            ts = str(args.get("ts", ""))
            self.update_arrivals.setdefault(ts, []).append(time.monotonic())
        answer = super()._answer(method, args, auth)
        if answer[1].get("ok"):
            self._note(method, args)
        return answer

    async def _response(self, request: web.Request) -> web.Response:
        self._measure(await request.json())  # aiohttp keeps the body for the base class
        return await super()._response(request)

    def _measure(self, args: dict[str, Any]) -> None:
        self.longest_text = max(self.longest_text, len(str(args.get("text") or "")))
        self.longest_section = max(self.longest_section, *section_lengths(args.get("blocks")), 0)

    def _note(self, method: str, args: dict[str, Any]) -> None:
        text = str(args.get("text", ""))
        now = time.monotonic()
        if method == "chat.postMessage" and args.get("thread_ts"):
            if text.startswith(":white_check_mark:"):
                self.sent_replies.append(now)
            elif text.startswith(":speech_balloon:"):
                self.relayed.append(text[:200])
            elif not text.startswith(":hourglass"):
                self.failed_replies.append(text[:200])
        elif method == "chat.update":
            self.edits.append(Edit(now, str(args.get("ts", "")), text))

    def outcomes(self) -> int:
        """Outcome replies posted so far, sent or not."""
        return len(self.sent_replies) + len(self.failed_replies)


@dataclass(frozen=True)
class Arrival:
    """One request to the 2Chat stand-in, on any endpoint."""

    when: float
    call: str  # "METHOD /path"
    refused: bool  # answered 429: over the per-minute cap


class TimedTwoChat(TwoChatStandIn):
    """The 2Chat stand-in, noting every request on every endpoint. With ``cap`` it behaves
    like a 2Chat account limited to ``cap`` requests a minute: GET /open/info says so, and
    any request that finds more than ``cap`` in the trailing 60 s is answered 429.
    Without it, /open/info reports a limit no run reaches (``UNCAPPED_PER_MINUTE``)."""

    def __init__(self, delay: float = 0.0, cap: int | None = None) -> None:
        super().__init__(api_key=TWOCHAT_KEY)
        self.limit(cap or UNCAPPED_PER_MINUTE)  # the stand-in's own sliding window enforces it
        self.cap = cap
        self.arrivals: list[float] = []  # POST /open/sms/send only
        self.texts: list[tuple[float, str]] = []  # each POST /open/sms/send: when, its body
        self.calls: list[Arrival] = []
        self.set_delay(delay)

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.middlewares.append(self._count)

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Note the request, and whether the account's limit refused it."""
        now = time.monotonic()
        response = await handler(request)
        self.calls.append(Arrival(now, f"{request.method} {request.path}", response.status == 429))
        return response

    async def _send(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.arrivals.append(now)
        self.texts.append((now, await request.text()))  # aiohttp keeps the body for the base
        return await super()._send(request)

    def sent_to(self) -> list[tuple[str, str]]:
        """(to_number, text) of every send that carried them, in arrival order."""
        return [
            (str(body.get("to_number")), str(body.get("text")))
            for body in list(self.sends)
            if "to_number" in body
        ]

    def first_send_containing(self, mark: str) -> float | None:
        """When the first send whose body contains ``mark`` arrived, if one has."""
        return next((when for when, body in list(self.texts) if mark in body), None)

    def sends_containing(self, mark: str) -> int:
        return sum(1 for _, body in list(self.texts) if mark in body)

    def refusals(self) -> int:
        """Requests answered 429 for going over the cap."""
        return sum(1 for call in list(self.calls) if call.refused)

    def poll_calls(self) -> list[Arrival]:
        """Requests to the endpoints the reply poller reads."""
        return [
            call for call in list(self.calls) if call.call.split(" ", 1)[1].startswith(POLL_PATHS)
        ]


def most_in_window(times: list[float], seconds: float) -> int:
    """The most of ``times`` within any span shorter than ``seconds`` (a sliding window
    anchored on each time in turn)."""
    ordered, most, first = sorted(times), 0, 0
    for last, when in enumerate(ordered):
        while when - ordered[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most
