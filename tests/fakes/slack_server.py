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
# chat.update: about one edit per second per channel before Slack answers "ratelimited"
# (https://api.slack.com/apis/rate-limits#special-rate-limits: one message a second per channel).
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
# Every size limit Slack documents for the surfaces the app uses, in one table. A rule says
# that ``field`` of one kind of object holds at most ``most`` characters (a string, or the
# text of a text object) or items (a list); ``most`` may name a sibling field instead (an
# input's initial value within its own max_length). ``ref`` is the page that says so.
BLOCKS = "https://api.slack.com/reference/block-kit/blocks"
ELEMENTS = "https://api.slack.com/reference/block-kit/block-elements"
OBJECTS = "https://api.slack.com/reference/block-kit/composition-objects"
VIEWS = "https://api.slack.com/reference/surfaces/views"
POST_MESSAGE = "https://api.slack.com/methods/chat.postMessage"
MAX_MESSAGE_TEXT, MAX_SECTION_TEXT = 40_000, 3000


@dataclass(frozen=True)
class Rule:
    kind: str  # "message", "view", "block" or "element" (any), a block or element type, …
    field: str
    most: int | str
    ref: str
    error: str | None = None  # Slack's error when not its usual one for the surface


RULES: tuple[Rule, ...] = (
    Rule("message", "text", MAX_MESSAGE_TEXT, POST_MESSAGE + "#truncating", "msg_too_long"),
    Rule("message", "blocks", 50, BLOCKS),  # "up to 50 blocks in each message"
    Rule("view", "blocks", 100, BLOCKS),  # "up to 100 blocks in modals or Home tabs"
    Rule("view", "title", 24, VIEWS + "#modal"),
    Rule("view", "submit", 24, VIEWS + "#modal"),
    Rule("view", "close", 24, VIEWS + "#modal"),
    Rule("view", "private_metadata", 3000, VIEWS + "#modal"),
    Rule("view", "callback_id", 255, VIEWS + "#modal"),
    Rule("text", "text", 3000, OBJECTS + "#text"),
    Rule("block", "block_id", 255, BLOCKS),  # every block
    Rule("section", "text", MAX_SECTION_TEXT, BLOCKS + "#section"),
    Rule("section", "fields", 10, BLOCKS + "#section"),
    Rule("field", "text", 2000, BLOCKS + "#section"),  # each of a section's fields
    Rule("header", "text", 150, BLOCKS + "#header"),
    Rule("context", "elements", 10, BLOCKS + "#context"),
    Rule("actions", "elements", 25, BLOCKS + "#actions"),
    Rule("input", "label", 2000, BLOCKS + "#input"),
    Rule("input", "hint", 2000, BLOCKS + "#input"),
    Rule("element", "action_id", 255, ELEMENTS),  # every interactive element
    Rule("element", "placeholder", 150, ELEMENTS + "#static_select"),
    Rule("button", "text", 75, ELEMENTS + "#button"),
    Rule("button", "value", 2000, ELEMENTS + "#button"),
    Rule("button", "url", 3000, ELEMENTS + "#button"),
    Rule("static_select", "options", 100, ELEMENTS + "#static_select"),
    Rule("static_select", "option_groups", 100, ELEMENTS + "#static_select"),
    Rule("multi_static_select", "options", 100, ELEMENTS + "#static_multi_select"),
    Rule("multi_static_select", "option_groups", 100, ELEMENTS + "#static_multi_select"),
    Rule("checkboxes", "options", 10, ELEMENTS + "#checkboxes"),
    Rule("radio_buttons", "options", 10, ELEMENTS + "#radio"),
    Rule("plain_text_input", "max_length", 3000, ELEMENTS + "#input"),
    Rule("plain_text_input", "initial_value", 3000, ELEMENTS + "#input"),
    Rule("plain_text_input", "initial_value", "max_length", ELEMENTS + "#input"),
    Rule("option", "text", 75, OBJECTS + "#option"),
    Rule("option", "description", 75, OBJECTS + "#option"),
    Rule("option", "value", 150, OBJECTS + "#option"),
    Rule("option", "url", 3000, OBJECTS + "#option"),
    Rule("option_group", "label", 75, OBJECTS + "#option_group"),
    Rule("option_group", "options", 100, OBJECTS + "#option_group"),
    Rule("confirm", "title", 100, OBJECTS + "#confirm"),
    Rule("confirm", "text", 300, OBJECTS + "#confirm"),
    Rule("confirm", "confirm", 30, OBJECTS + "#confirm"),
    Rule("confirm", "deny", 30, OBJECTS + "#confirm"),
)

# Where objects nest: (kind, field) → the kind of the object (or of each item) found there.
NESTED: dict[tuple[str, str], str] = {
    ("message", "blocks"): "block",
    ("view", "blocks"): "block",
    ("section", "fields"): "field",
    ("section", "accessory"): "element",
    ("context", "elements"): "element",
    ("actions", "elements"): "element",
    ("input", "element"): "element",
    ("element", "options"): "option",
    ("element", "initial_options"): "option",
    ("element", "initial_option"): "option",
    ("element", "option_groups"): "option_group",
    ("element", "confirm"): "confirm",
    ("option_group", "options"): "option",
}
# An object's own "type" names a further kind (a block or element type); text objects,
# whatever their type, are the kind "text", and so is any object in one of TEXT_FIELDS.
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
TEXT_FIELDS = frozenset(
    {"text", "title", "submit", "close", "label", "hint", "placeholder", "description"}
    | {"confirm", "deny"}
)


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


@dataclass(frozen=True)
class Problem:
    """One rule a request breaks, where, and by how much."""

    path: str  # a JSON pointer into the request, as Slack names it
    size: int
    unit: str  # "characters" or "items"
    most: int
    error: str | None

    def __str__(self) -> str:
        return f"{self.path}: {self.size} {self.unit}, more than {self.most}"

    def slack_message(self) -> str:
        """As Slack words it in ``response_metadata.messages``."""
        return f"[ERROR] must be no more than {self.most} {self.unit} [json-pointer:{self.path}]"


def kinds_of(hint: str, obj: dict[str, Any]) -> tuple[str, ...]:
    """The kinds whose rules apply to ``obj``: where it sits (``hint``) and its own type."""
    kind = obj.get("type")
    if kind in TEXT_TYPES:
        return (hint, "text")
    return (hint, kind) if isinstance(kind, str) else (hint,)


def _measured(path: str, value: Any) -> tuple[str, int, str] | None:
    """(path, size, unit) of a field: a list counts items, a text object its text."""
    if isinstance(value, list):
        return path, len(value), "items"
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return f"{path}/text", len(value["text"]), "characters"
    if isinstance(value, str):
        return path, len(value), "characters"
    if isinstance(value, int) and not isinstance(value, bool):
        return path, value, "characters"  # a max_length is itself a number of characters
    return None


def problems_in(hint: str, obj: Any, path: str) -> Iterator[Problem]:
    """Every rule ``obj`` (of kind ``hint``) and the objects inside it break."""
    if not isinstance(obj, dict):
        return
    kinds = kinds_of(hint, obj)
    for rule in RULES:
        if rule.kind not in kinds or rule.field not in obj:
            continue
        most = obj.get(rule.most) if isinstance(rule.most, str) else rule.most
        measured = _measured(f"{path}/{rule.field}", obj[rule.field])
        if isinstance(most, int) and measured is not None and measured[1] > most:
            yield Problem(*measured, most, rule.error)
    for key, value in obj.items():
        child = next((NESTED[k, key] for k in kinds if (k, key) in NESTED), None)
        if child is None and key in TEXT_FIELDS and isinstance(value, dict):
            child = "text"
        if child is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from problems_in(child, item, f"{path}/{key}/{i}")
        else:
            yield from problems_in(child, value, f"{path}/{key}")


def _strictest(problems: Iterator[Problem]) -> list[Problem]:
    """One problem per path, the strictest rule's (a section's text is also a text object)."""
    found: dict[str, Problem] = {}
    for problem in problems:
        if problem.path not in found or problem.most < found[problem.path].most:
            found[problem.path] = problem
    return list(found.values())


Verdict = tuple[str, list[Problem]]


def message_verdict(args: dict[str, Any]) -> Verdict | None:
    """What Slack answers a message (chat.* or response_url) over its limits, or None."""
    message = {**args, "blocks": parsed_json(args.get("blocks"))}
    problems = _strictest(problems_in("message", message, ""))
    if not problems:
        return None
    return next((p.error for p in problems if p.error), "invalid_blocks"), problems


def view_verdict(args: dict[str, Any]) -> Verdict | None:
    """What Slack answers a views.* call whose view is over its limits, or None."""
    problems = _strictest(problems_in("view", parsed_json(args.get("view")), "/view"))
    return ("invalid_arguments", problems) if problems else None


PEOPLE_METHODS = frozenset({"usergroups.users.list", "users.profile.get", "users.info"})
# The people methods' documented rate limits, calls per minute per workspace:
# https://api.slack.com/methods/usergroups.users.list (Tier 2: 20+ per minute) and
# https://api.slack.com/methods/users.profile.get (Tier 4: 100+ per minute). Past them Slack
# answers HTTP 429 with a Retry-After header in seconds and {"ok": false, "error":
# "ratelimited"}: https://api.slack.com/apis/rate-limits
PEOPLE_PER_MINUTE = {"usergroups.users.list": 20, "users.profile.get": 100}


def limit_verdict(method: str, args: dict[str, Any]) -> Verdict | None:
    if method in MESSAGE_METHODS:
        return message_verdict(args)
    if method in VIEW_METHODS:
        return view_verdict(args)
    return None


def refusal_body(error: str, problems: list[Problem]) -> dict[str, Any]:
    """Slack's answer to a request over its limits: the error, and each problem's path."""
    return {
        "ok": False,
        "error": error,
        "errors": [str(p) for p in problems],
        "response_metadata": {"messages": [p.slack_message() for p in problems]},
    }


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
    a method's answers. ``stall(method)`` models the network losing the calls of a method:
    each hangs, never reaching Slack (so never recorded in ``calls``; ``stalled_calls``
    counts them), until ``unstall`` fails it with a 503. With ``enforce_people_rate`` set,
    the people methods keep Slack's per-minute limits (``PEOPLE_PER_MINUTE``) over a minute
    ``people_minute`` seconds long (shortened so a test need not wait a real minute),
    answering 429 with Retry-After.
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
    stalled: set[str] = field(default_factory=set)
    stalled_calls: list[Call] = field(default_factory=list)

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

    def stall(self, method: str) -> None:
        """Hang every call of ``method`` before it reaches Slack, until ``unstall``."""
        self.stalled.add(method)

    def unstall(self) -> None:
        """Fail the hung calls (503, unrecorded: Slack never saw them); answer again."""
        self.stalled.clear()

    def reset(self) -> None:
        with self._changed:
            self.stalled.clear()
            self.stalled_calls.clear()
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
        if method in self.stalled:
            self.record(lambda: self.stalled_calls.append(Call(method, args)))
            while method in self.stalled:
                await asyncio.sleep(0.02)
            return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
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
            violation = Violation(method, error, tuple(str(p) for p in problems))
            self.record(lambda: self.limit_violations.append(violation))
            return 200, refusal_body(error, problems), {}
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
        if method == "conversations.history":
            return self._history(args)
        if method in VIEW_METHODS:
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view or {}
            return (
                200,
                {"ok": True, "view": {**view, "id": "V0001", "hash": f"h{next(self._ts)}"}},
                {},
            )
        return 200, {"ok": True}, {}

    def _history(self, args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """https://api.slack.com/methods/conversations.history: the channel's messages
        (thread replies are not in it), newest first, at most ``limit`` (default 100), each
        as it reads now; a message's ``metadata`` (https://api.slack.com/metadata/using)
        only with ``include_all_metadata``."""
        channel = str(args.get("channel", ""))
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        messages = []
        for post in reversed(self.posts(channel)):
            if post.get("thread_ts"):
                continue
            message = {"type": "message", "ts": post["_ts"], "text": self.latest(post)["text"]}
            if with_metadata and post.get("metadata"):
                message["metadata"] = parsed_json(post["metadata"])
            messages.append(message)
        limit = int(args.get("limit") or 100)
        more = len(messages) > limit
        return 200, {"ok": True, "messages": messages[:limit], "has_more": more}, {}

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
            violation = Violation("response_url", error, tuple(str(p) for p in problems))
            self.record(lambda: self.limit_violations.append(violation))
            return web.Response(status=400, text=error)
        payload["_name"] = request.match_info["name"]
        self.record(lambda: self.responses.append(payload))
        return web.Response(text="ok")
