"""A local stand-in for Slack's Web API and response_url endpoints."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.background import BackgroundServer

BOT_TOKEN = "xoxb-000000000000-test-token"
BOT_USER_ID = "UBOT"


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass
class Failure:
    error: str
    status: int = 200
    times: int = 1
    retry_after: int | None = None


@dataclass
class SlackStandIn(BackgroundServer):
    """Answers Web API calls like Slack does, records them, and fails on request.

    ``channel_errors`` makes chat.postMessage to a channel fail (e.g. "not_in_channel");
    ``fail(method, ...)`` scripts the next failures of any method.
    """

    token: str = BOT_TOKEN
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    channel_errors: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()
        self._ts = itertools.count(1)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "cmd") -> str:
        return f"{self.url}/response/{name}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response)

    def fail(
        self,
        method: str,
        error: str,
        status: int = 200,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        self.failures.setdefault(method, []).append(Failure(error, status, times, retry_after))

    def reset(self) -> None:
        with self._changed:
            self.calls.clear()
            self.responses.clear()
            self.channel_errors.clear()
            self.failures.clear()

    # --- what tests read -------------------------------------------------------------
    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Successful chat.postMessage calls, optionally in one channel."""
        return [
            call.args
            for call in list(self.calls)
            if call.method == "chat.postMessage"
            and call.args.get("_ok")
            and (channel is None or call.args.get("channel") == channel)
        ]

    def latest(self, post: dict[str, Any]) -> dict[str, Any]:
        """A posted message as it reads now, after any chat.update of it."""
        edits = [
            call.args
            for call in list(self.calls)
            if call.method == "chat.update"
            and call.args.get("_ok")
            and call.args.get("ts") == post.get("_ts")
        ]
        return {**post, **edits[-1]} if edits else post

    def thread_replies(self, channel: str) -> list[dict[str, Any]]:
        """Thread replies as they read now; progress notes still being edited are left out."""
        replies = [self.latest(post) for post in self.posts(channel) if post.get("thread_ts")]
        return [r for r in replies if not str(r.get("text", "")).startswith(":hourglass")]

    def wait_for_posts(
        self, n: int, channel: str | None = None, timeout: float = 5
    ) -> list[dict[str, Any]]:
        return self.wait_until(
            lambda: (posts := self.posts(channel)) and len(posts) >= n and posts,
            timeout,
            f"{n} posts in {channel or 'any channel'}; got {self.posts(channel)}",
        )

    def wait_for_thread_reply(self, channel: str, timeout: float = 5) -> dict[str, Any]:
        return self.wait_until(
            lambda: self.thread_replies(channel) and self.thread_replies(channel)[-1],
            timeout,
            f"a thread reply in {channel}; calls: {self.calls}",
        )

    def wait_for_response(self, n: int = 1, timeout: float = 5) -> list[dict[str, Any]]:
        return self.wait_until(
            lambda: len(self.responses) >= n and list(self.responses),
            timeout,
            f"{n} response_url posts; got {self.responses}",
        )

    def all_text(self) -> str:
        """Everything the app sent to Slack, for leak checks."""
        return json.dumps([call.args for call in self.calls] + self.responses)

    # --- handlers --------------------------------------------------------------------
    async def _args(self, request: web.Request) -> dict[str, Any]:
        body = await request.text()
        if request.content_type == "application/json":
            return json.loads(body or "{}")
        return dict(parse_qsl(body))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        answer = self._answer(method, args, request.headers.get("Authorization", ""))
        status, body, headers = answer
        args["_ok"] = body.get("ok", False)
        if "ts" in body:
            args["_ts"] = body["ts"]
        self.record(lambda: self.calls.append(Call(method, args)))
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if auth != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        scripted = self.failures.get(method)
        if scripted:
            failure = scripted[0]
            failure.times -= 1
            if failure.times <= 0:
                scripted.pop(0)
            headers = (
                {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            )
            return failure.status, {"ok": False, "error": failure.error}, headers
        if method == "auth.test":
            return (
                200,
                {
                    "ok": True,
                    "user_id": BOT_USER_ID,
                    "bot_id": "BBOT",
                    "team_id": "T0TEAM",
                    "user": "sms-bridge",
                    "team": "Test",
                    "url": "https://test.slack.com/",
                },
                {},
            )
        if method == "chat.postMessage":
            channel = str(args.get("channel", ""))
            if channel in self.channel_errors:
                return 200, {"ok": False, "error": self.channel_errors[channel]}, {}
            ts = f"1700000000.{next(self._ts):06d}"
            return (
                200,
                {
                    "ok": True,
                    "channel": channel,
                    "ts": ts,
                    "message": {"text": args.get("text"), "ts": ts},
                },
                {},
            )
        if method in ("views.open", "views.update", "views.push"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view or {}
            return (
                200,
                {"ok": True, "view": {**view, "id": "V0001", "hash": f"h{next(self._ts)}"}},
                {},
            )
        return 200, {"ok": True}, {}

    async def _response(self, request: web.Request) -> web.Response:
        payload = await request.json()
        payload["_name"] = request.match_info["name"]
        self.record(lambda: self.responses.append(payload))
        return web.Response(text="ok")
