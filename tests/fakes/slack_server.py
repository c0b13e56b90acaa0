"""A local stand-in for Slack's Web API and response_url endpoints."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.background import BackgroundServer

BOT_TOKEN = "xoxb-000000000000-test-token"
BOT_USER_ID = "UBOT"


MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})
VIEW_METHODS = frozenset({"views.open", "views.update", "views.push", "views.publish"})
# Slack's documented Block Kit limits (characters unless said otherwise).
MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS = 50, 100
MAX_MESSAGE_TEXT = 40_000
MAX_SECTION_TEXT, MAX_SECTION_FIELD, MAX_SECTION_FIELDS = 3000, 2000, 10
MAX_CONTEXT_ELEMENTS, MAX_ACTIONS_ELEMENTS = 10, 25
MAX_HEADER_TEXT, MAX_BUTTON_TEXT, MAX_BUTTON_VALUE = 150, 75, 2000
MAX_OPTIONS, MAX_OPTION_TEXT, MAX_OPTION_VALUE = 100, 75, 150
MAX_INPUT_VALUE, MAX_LABEL, MAX_PLACEHOLDER = 3000, 2000, 150
MAX_BLOCK_ID, MAX_ACTION_ID = 255, 255
MAX_VIEW_TITLE, MAX_PRIVATE_METADATA, MAX_CALLBACK_ID = 24, 3000, 255
# chat.update: about one edit per second per channel before Slack answers "ratelimited".
UPDATE_INTERVAL = 1.0


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Violation:
    """One request Slack would have refused for exceeding a limit."""

    where: str  # the API method, or "response_url"
    error: str  # what Slack answers: invalid_blocks, msg_too_long, invalid_arguments
    problems: tuple[str, ...]  # each with the JSON path that broke a limit

    def __str__(self) -> str:
        return f"{self.where}: {self.error}: {'; '.join(self.problems)}"


@dataclass
class Failure:
    error: str
    status: int = 200
    times: int = 1
    retry_after: int | None = None


# --- Slack's limits ----------------------------------------------------------------------
def items_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text_of(obj: Any) -> str:
    """The text of a text object (or a bare string)."""
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return obj if isinstance(obj, str) else ""


def parsed_json(value: Any) -> Any:
    """slack-sdk sends some arguments (blocks, view) JSON-encoded inside the request."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _too_long(path: str, value: Any, limit: int) -> Iterator[str]:
    if isinstance(value, str) and len(value) > limit:
        yield f"{path}: {len(value)} characters, more than {limit}"


def _too_many(path: str, value: Any, limit: int) -> Iterator[str]:
    if isinstance(value, list) and len(value) > limit:
        yield f"{path}: {len(value)} items, more than {limit}"


def _option_problems(path: str, options: Any) -> Iterator[str]:
    yield from _too_many(path, options, MAX_OPTIONS)
    for i, option in enumerate(items_of(options)):
        if isinstance(option, dict):
            yield from _too_long(
                f"{path}/{i}/text/text", text_of(option.get("text")), MAX_OPTION_TEXT
            )
            yield from _too_long(f"{path}/{i}/value", option.get("value"), MAX_OPTION_VALUE)


def element_problems(path: str, element: Any) -> Iterator[str]:
    """Limits of one interactive element (button, select menu, text input)."""
    if not isinstance(element, dict):
        return
    kind = element.get("type")
    yield from _too_long(f"{path}/action_id", element.get("action_id"), MAX_ACTION_ID)
    placeholder = text_of(element.get("placeholder"))
    yield from _too_long(f"{path}/placeholder/text", placeholder, MAX_PLACEHOLDER)
    if kind == "button":
        yield from _too_long(f"{path}/text/text", text_of(element.get("text")), MAX_BUTTON_TEXT)
        yield from _too_long(f"{path}/value", element.get("value"), MAX_BUTTON_VALUE)
    elif kind in ("static_select", "multi_static_select"):
        yield from _option_problems(f"{path}/options", element.get("options"))
        groups = element.get("option_groups")
        yield from _too_many(f"{path}/option_groups", groups, MAX_OPTIONS)
        for i, group in enumerate(items_of(groups)):
            if isinstance(group, dict):
                yield from _option_problems(
                    f"{path}/option_groups/{i}/options", group.get("options")
                )
    elif kind == "plain_text_input":
        initial = element.get("initial_value")
        yield from _too_long(f"{path}/initial_value", initial, MAX_INPUT_VALUE)
        max_length = element.get("max_length")
        if isinstance(max_length, int) and max_length > MAX_INPUT_VALUE:
            yield f"{path}/max_length: {max_length}, more than {MAX_INPUT_VALUE}"
        if isinstance(max_length, int) and isinstance(initial, str) and len(initial) > max_length:
            yield f"{path}/initial_value: {len(initial)} characters, more than its max_length"


def block_problems(path: str, block: Any) -> Iterator[str]:
    """Limits of one layout block and the elements inside it."""
    if not isinstance(block, dict):
        return
    kind = block.get("type")
    yield from _too_long(f"{path}/block_id", block.get("block_id"), MAX_BLOCK_ID)
    if kind == "section":
        yield from _too_long(f"{path}/text/text", text_of(block.get("text")), MAX_SECTION_TEXT)
        fields = block.get("fields")
        yield from _too_many(f"{path}/fields", fields, MAX_SECTION_FIELDS)
        for i, item in enumerate(items_of(fields)):
            yield from _too_long(f"{path}/fields/{i}/text", text_of(item), MAX_SECTION_FIELD)
        yield from element_problems(f"{path}/accessory", block.get("accessory"))
    elif kind == "header":
        yield from _too_long(f"{path}/text/text", text_of(block.get("text")), MAX_HEADER_TEXT)
    elif kind == "context":
        elements = block.get("elements")
        yield from _too_many(f"{path}/elements", elements, MAX_CONTEXT_ELEMENTS)
        for i, item in enumerate(items_of(elements)):
            if isinstance(item, dict) and item.get("type") in ("mrkdwn", "plain_text"):
                yield from _too_long(f"{path}/elements/{i}/text", text_of(item), MAX_SECTION_TEXT)
    elif kind == "actions":
        elements = block.get("elements")
        yield from _too_many(f"{path}/elements", elements, MAX_ACTIONS_ELEMENTS)
        for i, item in enumerate(items_of(elements)):
            yield from element_problems(f"{path}/elements/{i}", item)
    elif kind == "input":
        yield from _too_long(f"{path}/label/text", text_of(block.get("label")), MAX_LABEL)
        yield from _too_long(f"{path}/hint/text", text_of(block.get("hint")), MAX_LABEL)
        yield from element_problems(f"{path}/element", block.get("element"))


def _blocks_problems(path: str, blocks: Any, limit: int) -> list[str]:
    problems = list(_too_many(path, blocks, limit))
    for i, block in enumerate(items_of(blocks)):
        problems.extend(block_problems(f"{path}/{i}", block))
    return problems


def message_verdict(args: dict[str, Any]) -> tuple[str, list[str]] | None:
    """What Slack answers a message (chat.* or response_url) over its limits, or None."""
    text = args.get("text")
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        return "msg_too_long", [f"/text: {len(text)} characters, more than {MAX_MESSAGE_TEXT}"]
    problems = _blocks_problems("/blocks", parsed_json(args.get("blocks")), MAX_MESSAGE_BLOCKS)
    return ("invalid_blocks", problems) if problems else None


def view_verdict(args: dict[str, Any]) -> tuple[str, list[str]] | None:
    """What Slack answers a views.* call whose view is over its limits, or None."""
    view = parsed_json(args.get("view"))
    if not isinstance(view, dict):
        return None
    problems = _blocks_problems("/view/blocks", view.get("blocks"), MAX_VIEW_BLOCKS)
    for key in ("title", "submit", "close"):
        problems.extend(_too_long(f"/view/{key}/text", text_of(view.get(key)), MAX_VIEW_TITLE))
    metadata = view.get("private_metadata")
    problems.extend(_too_long("/view/private_metadata", metadata, MAX_PRIVATE_METADATA))
    problems.extend(_too_long("/view/callback_id", view.get("callback_id"), MAX_CALLBACK_ID))
    return ("invalid_arguments", problems) if problems else None


PEOPLE_METHODS = frozenset({"usergroups.users.list", "users.profile.get", "users.info"})
# The people methods' documented rate limits, calls per minute per workspace:
# https://api.slack.com/methods/usergroups.users.list (Tier 2: 20+ per minute) and
# https://api.slack.com/methods/users.profile.get (Tier 4: 100+ per minute). Past them Slack
# answers HTTP 429 with a Retry-After header in seconds and {"ok": false, "error":
# "ratelimited"}: https://api.slack.com/apis/rate-limits
PEOPLE_PER_MINUTE = {"usergroups.users.list": 20, "users.profile.get": 100}


def limit_verdict(method: str, args: dict[str, Any]) -> tuple[str, list[str]] | None:
    if method in MESSAGE_METHODS:
        return message_verdict(args)
    if method in VIEW_METHODS:
        return view_verdict(args)
    return None


@dataclass
class SlackStandIn(BackgroundServer):
    """Answers Web API calls like Slack does, records them, and fails on request.

    ``channel_errors`` makes chat.postMessage to a channel fail (e.g. "not_in_channel");
    ``fail(method, ...)`` scripts the next failures of any method. Messages and views over
    Slack's Block Kit limits are refused as Slack refuses them and kept in
    ``limit_violations``, so a test can insist that none happened (``assert_within_limits``).
    Accepted chat.update calls are timed per channel (``update_times``); with
    ``enforce_update_rate`` set, an edit less than a second after the last one in its channel
    is answered ``ratelimited`` (HTTP 429, Retry-After). ``socket_urls`` maps app-level tokens
    to Socket Mode URLs handed out by apps.connections.open. The workspace's people:
    ``user_groups`` (user group id → member user ids, for usergroups.users.list) and
    ``profiles`` (user id → profile fields such as "phone", for users.profile.get and
    users.info); tests set them, and ``reset`` empties them. ``slow(method, seconds)`` delays
    a method's answers. With ``enforce_people_rate`` set, the people methods keep Slack's
    per-minute limits (``PEOPLE_PER_MINUTE``) over a minute ``people_minute`` seconds long
    (shortened so a test need not wait a real minute), answering 429 with Retry-After.
    """

    token: str = BOT_TOKEN
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    channel_errors: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    limit_violations: list[Violation] = field(default_factory=list)
    update_times: dict[str, list[float]] = field(default_factory=dict)
    enforce_update_rate: bool = False
    socket_urls: dict[str, str] = field(default_factory=dict)
    user_groups: dict[str, list[str]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    enforce_people_rate: bool = False
    people_minute: float = 60.0
    people_times: dict[str, list[float]] = field(default_factory=dict)

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
        app.router.add_get("/api/{method}", self._api)  # slack-sdk GETs some read methods
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

    def slow(self, method: str, seconds: float) -> None:
        """Answer every call of ``method`` only after ``seconds``, as a slow Slack would."""
        self.delays[method] = seconds

    def reset(self) -> None:
        with self._changed:
            self.calls.clear()
            self.responses.clear()
            self.channel_errors.clear()
            self.failures.clear()
            self.limit_violations.clear()
            self.update_times.clear()
            self.enforce_update_rate = False
            self.user_groups.clear()
            self.profiles.clear()
            self.delays.clear()
            self.enforce_people_rate = False
            self.people_minute = 60.0
            self.people_times.clear()

    # --- what tests read -------------------------------------------------------------
    def assert_within_limits(self) -> None:
        """Fail loudly if the app sent anything Slack would have refused for its size."""
        assert not self.limit_violations, "Slack would refuse:\n" + "\n".join(
            str(violation) for violation in self.limit_violations
        )

    def too_fast_updates(self, channel: str | None = None) -> list[tuple[str, float]]:
        """(channel, seconds) for each chat.update sooner than Slack's pace after the last."""
        found: list[tuple[str, float]] = []
        for name, times in list(self.update_times.items()):
            if channel is None or name == channel:
                gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
                found.extend((name, gap) for gap in gaps if gap < UPDATE_INTERVAL)
        return found

    def wait_until(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """As the base class, naming any limit Slack enforced: a refused post never arrives."""
        try:
            return super().wait_until(condition, timeout, what)
        except AssertionError as exc:
            if not self.limit_violations:
                raise
            refused = "\n".join(str(violation) for violation in self.limit_violations)
            raise AssertionError(f"{exc}\nSlack refused, over its limits:\n{refused}") from None

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
        posts: list[dict[str, Any]] = self.wait_until(
            lambda: (posts := self.posts(channel)) and len(posts) >= n and posts,
            timeout,
            f"{n} posts in {channel or 'any channel'}; got {self.posts(channel)}",
        )
        return posts

    def wait_for_thread_reply(self, channel: str, timeout: float = 5) -> dict[str, Any]:
        reply: dict[str, Any] = self.wait_until(
            lambda: self.thread_replies(channel) and self.thread_replies(channel)[-1],
            timeout,
            f"a thread reply in {channel}; calls: {self.calls}",
        )
        return reply

    def wait_for_response(self, n: int = 1, timeout: float = 5) -> list[dict[str, Any]]:
        responses: list[dict[str, Any]] = self.wait_until(
            lambda: len(self.responses) >= n and list(self.responses),
            timeout,
            f"{n} response_url posts; got {self.responses}",
        )
        return responses

    def all_text(self) -> str:
        """Everything the app sent to Slack, for leak checks."""
        return json.dumps([call.args for call in self.calls] + self.responses)

    # --- handlers --------------------------------------------------------------------
    async def _args(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return dict(request.query)
        body = await request.text()
        if request.content_type == "application/json":
            parsed: dict[str, Any] = json.loads(body or "{}")
            return parsed
        return dict(parse_qsl(body))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
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
        if method == "apps.connections.open":
            return self._connections_open(auth)
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
        verdict = limit_verdict(method, args)
        if verdict is not None:
            error, problems = verdict
            self.record(
                lambda: self.limit_violations.append(Violation(method, error, tuple(problems)))
            )
            return 200, {"ok": False, "error": error, "errors": problems}, {}
        if method == "chat.update":
            return self._update(args)
        if method in PEOPLE_METHODS:
            return self._people(method, args)
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
        if method in VIEW_METHODS:
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view or {}
            return (
                200,
                {"ok": True, "view": {**view, "id": "V0001", "hash": f"h{next(self._ts)}"}},
                {},
            )
        return 200, {"ok": True}, {}

    def _people(
        self, method: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The directory methods, answered from ``user_groups`` and ``profiles`` in the shapes
        and with the errors Slack documents for an unknown group or user, within their rate
        limits when ``enforce_people_rate`` is set."""
        limited = self._people_rate(method)
        if limited is not None:
            return limited
        # https://api.slack.com/methods/usergroups.users.list: {"ok": true, "users": [ids]}
        if method == "usergroups.users.list":
            members = self.user_groups.get(str(args.get("usergroup", "")))
            if members is None:
                return 200, {"ok": False, "error": "no_such_subteam"}, {}
            return 200, {"ok": True, "users": list(members)}, {}
        user = str(args.get("user", ""))
        profile = self.profiles.get(user)
        if profile is None:
            return 200, {"ok": False, "error": "user_not_found"}, {}
        # https://api.slack.com/methods/users.profile.get: {"ok": true, "profile": {...}}
        if method == "users.profile.get":
            return 200, {"ok": True, "profile": dict(profile)}, {}
        name = profile.get("real_name", user)
        return 200, {"ok": True, "user": {"id": user, "name": name, "profile": dict(profile)}}, {}

    def _people_rate(self, method: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """Slack's 429 for a people method called more often than its tier allows in the
        last minute (https://api.slack.com/apis/rate-limits), with the whole seconds until
        the oldest call leaves the minute as Retry-After; None when the call may go."""
        per_minute = PEOPLE_PER_MINUTE.get(method)
        if not self.enforce_people_rate or per_minute is None:
            return None
        now = time.monotonic()
        with self._changed:
            times = self.people_times.setdefault(method, [])
            times[:] = [at for at in times if now - at < self.people_minute]
            if len(times) >= per_minute:
                wait = max(1, math.ceil(self.people_minute - (now - times[0])))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)}
            times.append(now)
        return None

    def _connections_open(self, auth: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Socket Mode's URL, for an app-level token only (as Slack: not the bot token)."""
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token == self.token:
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        url = self.socket_urls.get(token)
        if url is None:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        return 200, {"ok": True, "url": url}, {}

    def _update(self, args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        channel = str(args.get("channel", ""))
        now = time.monotonic()
        with self._changed:
            times = self.update_times.setdefault(channel, [])
            if self.enforce_update_rate and times and now - times[-1] < UPDATE_INTERVAL:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
            times.append(now)
            self._changed.notify_all()
        body = {"ok": True, "channel": channel, "ts": args.get("ts"), "text": args.get("text")}
        return 200, body, {}

    async def _response(self, request: web.Request) -> web.Response:
        """A response_url post. Like an incoming webhook, Slack refuses one over its limits
        with an HTTP 400 and the error as plain text."""
        payload = await request.json()
        verdict = message_verdict(payload)
        if verdict is not None:
            error, problems = verdict
            violation = Violation("response_url", error, tuple(problems))
            self.record(lambda: self.limit_violations.append(violation))
            return web.Response(status=400, text=error)
        payload["_name"] = request.match_info["name"]
        self.record(lambda: self.responses.append(payload))
        return web.Response(text="ok")
