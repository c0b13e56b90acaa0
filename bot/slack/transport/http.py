"""Slack's HTTP endpoint: hand signed requests to Bolt, classified correctly.

Bolt decides that a form body is an interactive payload whenever the raw body contains the
substring "payload" anywhere, so ``/sms alice the payload is ready`` (or a channel, user or
team named like that) was answered "unhandled request". We parse the form ourselves and
give Bolt the right body; the raw text stays untouched for signature verification.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.slack.transport.redelivery import served_over_http
from bot.slack.transport.replays import ReplayGuard

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackPost:
    """A POST to /slack/events, its body parsed once for the log fields, the checks and
    Bolt (each used to parse it again). ``kind``: event, interaction, command or other;
    ``body``: the JSON, the interactive payload or the form's fields, None when the body
    does not parse."""

    raw: str
    kind: str
    body: Any


def read_post(raw: str) -> SlackPost:
    """The body as Slack means it: JSON (Events API), a form whose one ``payload`` field
    holds JSON (interactions), or plain form fields (slash commands, whatever words they
    contain)."""
    try:
        if raw.startswith("{"):
            body = json.loads(raw)
            is_event = isinstance(body, dict) and body.get("type") == "event_callback"
            return SlackPost(raw, "event" if is_event else "other", body)
        form = dict(parse_qsl(raw, keep_blank_values=True))
        if set(form) == {"payload"}:
            return SlackPost(raw, "interaction", json.loads(form["payload"]))
        return SlackPost(raw, "command" if "command" in form else "other", form)
    except ValueError:
        return SlackPost(raw, "other", None)


def bolt_body(post: SlackPost, content_type: str | None) -> dict[str, Any]:
    """The body Bolt is given: ours, so it does not depend on the words in a form (Bolt
    takes any form containing "payload" for an interactive one). ValueError for a body
    Bolt could not use."""
    if not post.raw.startswith("{") and content_type == "application/json":
        parsed = json.loads(post.raw)  # as Bolt reads it; the checks saw no JSON object
    else:
        parsed = post.body
    if not isinstance(parsed, dict):
        raise ValueError("the body is not a JSON object or a form")
    return parsed


def bolt_request(post: SlackPost, query: str, headers: dict[str, str]) -> AsyncBoltRequest:
    """A Bolt request with our parse of the body and its raw text untouched, for the
    signature (given the raw text, Bolt would parse it again)."""
    request = AsyncBoltRequest(body="", query=query, headers=headers)  # type: ignore[arg-type]
    request.raw_body = post.raw
    request.body = bolt_body(post, request.content_type)
    request.context = build_async_context(AsyncBoltContext({}), request.body)
    return request


def malformed_event(post: SlackPost) -> str | None:
    """What is wrong with an Events API callback whose ``event`` Bolt would trip over (and
    answer 500): it must be an object with a string ``type``. None when it is fine."""
    if not post.raw.startswith("{"):
        return None
    if post.body is None:
        return "the body is not JSON"
    if post.kind != "event":
        return None
    event = post.body.get("event")
    if not isinstance(event, dict):
        return "event is not an object"
    if not isinstance(event.get("type"), str):
        return "event.type is not a string"
    return None


async def dispatch(
    app: AsyncApp, request: web.Request, post: SlackPost, replays: ReplayGuard | None = None
) -> web.Response:
    """Hand a request Slack signed to Bolt. One it did not sign gets a 401 and a log line
    saying why (Bolt's own logs its whole body, response_url and all); a payload so
    malformed that Bolt itself trips over it gets a 400, never a 500 with a traceback; a
    replayed request gets a 200 and does nothing."""
    raw = post.raw
    if replays is not None:
        refusal = replays.refusal(raw, request.headers)
        if refusal is not None:
            logger.warning("Slack request refused: %s", refusal)
            return web.json_response({"error": "invalid request"}, status=401)
    problem = malformed_event(post)
    if problem is not None:
        logger.warning("malformed Slack event rejected: %s", problem)
        return web.json_response({"ok": False, "error": "malformed request"}, status=400)
    if replays is None:
        return await _to_bolt(app, post, request)
    with replays.serving(raw, request.headers) as replayed:
        if replayed:
            logger.warning("replayed Slack request ignored (same signature seen before)")
            return web.Response(status=200)
        return await _to_bolt(app, post, request)


async def _to_bolt(app: AsyncApp, post: SlackPost, request: web.Request) -> web.Response:
    """Bolt's answer, or a 503 when a listener asked Slack to deliver the event again."""
    try:
        with served_over_http() as redelivery_asked:
            bolt_response = await app.async_dispatch(
                bolt_request(post, request.query_string, dict(request.headers))
            )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning("malformed Slack payload rejected: %s", type(exc).__name__)
        return web.json_response({"ok": False, "error": "malformed request"}, status=400)
    if redelivery_asked:
        logger.warning(
            "answered 503 so that Slack delivers the event again: %s", redelivery_asked[0]
        )
        return web.json_response({"ok": False, "error": "try again"}, status=503)
    return await to_aiohttp_response(bolt_response)
