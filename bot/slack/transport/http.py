"""Slack's HTTP endpoint: hand signed requests to Bolt, classified correctly.

Bolt decides that a form body is an interactive payload whenever the raw body contains the
substring "payload" anywhere, so ``/sms alice the payload is ready`` (or a channel, user or
team named like that) was answered "unhandled request". We parse the form ourselves and
give Bolt the right body; the raw text stays untouched for signature verification.
"""

from __future__ import annotations

import json
import logging
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


def form_body(raw: str) -> dict[str, Any]:
    """A form post as Slack means it: interactive payloads carry one ``payload`` field
    holding JSON; slash commands are plain fields, whatever words they contain."""
    params = dict(parse_qsl(raw, keep_blank_values=True))
    if set(params) == {"payload"}:
        parsed = json.loads(params["payload"])
        if not isinstance(parsed, dict):
            raise ValueError("the interactive payload is not a JSON object")
        return parsed
    return params


def bolt_request(raw: str, query: str, headers: dict[str, str]) -> AsyncBoltRequest:
    """A Bolt request whose parsed body does not depend on the words in the form."""
    request = AsyncBoltRequest(body=raw, query=query, headers=headers)  # type: ignore[arg-type]
    if raw and not raw.startswith("{") and request.content_type != "application/json":
        request.body = form_body(raw)
        request.context = build_async_context(AsyncBoltContext({}), request.body)
    return request


def malformed_event(raw: str) -> str | None:
    """What is wrong with an Events API callback whose ``event`` Bolt would trip over (and
    answer 500): it must be an object with a string ``type``. None when it is fine."""
    if not raw.startswith("{"):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return "the body is not JSON"
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, dict):
        return "event is not an object"
    if not isinstance(event.get("type"), str):
        return "event.type is not a string"
    return None


async def dispatch(
    app: AsyncApp, request: web.Request, replays: ReplayGuard | None = None
) -> web.Response:
    """Hand a request Slack signed to Bolt. One it did not sign gets a 401 and a log line
    saying why (Bolt's own logs its whole body, response_url and all); a payload so
    malformed that Bolt itself trips over it gets a 400, never a 500 with a traceback; a
    replayed request gets a 200 and does nothing."""
    raw = await request.text()
    if replays is not None:
        refusal = replays.refusal(raw, request.headers)
        if refusal is not None:
            logger.warning("Slack request refused: %s", refusal)
            return web.json_response({"error": "invalid request"}, status=401)
    problem = malformed_event(raw)
    if problem is not None:
        logger.warning("malformed Slack event rejected: %s", problem)
        return web.json_response({"ok": False, "error": "malformed request"}, status=400)
    if replays is None:
        return await _to_bolt(app, raw, request)
    with replays.serving(raw, request.headers) as replayed:
        if replayed:
            logger.warning("replayed Slack request ignored (same signature seen before)")
            return web.Response(status=200)
        return await _to_bolt(app, raw, request)


async def _to_bolt(app: AsyncApp, raw: str, request: web.Request) -> web.Response:
    """Bolt's answer, or a 503 when a listener asked Slack to deliver the event again."""
    try:
        with served_over_http() as redelivery_asked:
            bolt_response = await app.async_dispatch(
                bolt_request(raw, request.query_string, dict(request.headers))
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
