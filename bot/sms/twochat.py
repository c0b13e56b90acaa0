"""An async client for 2Chat's SMS API (send, account info, and the read endpoints).

Every failure becomes a ``TwoChatError`` whose message is safe to show in Slack and whose
``temporary`` flag says whether retrying is safe and may help. A send that may have reached
2Chat (read timeout, lost connection, a 5xx other than the 503 and 504 that 2Chat documents
as "retry", a 2xx without a readable message id) is never marked temporary, since retrying
it could text someone twice: it is ``outcome_unknown``. docs/2chat.md lists every status.
The API key never appears in an error message, a repr or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from json import loads as json_loads
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp

from bot.core.retry_after import retry_after_seconds
from bot.errors import TwoChatError
from bot.sms.answers import (
    error_text,
    excerpt,
    has_error_flag,
    may_have_sent,
    maybe_sent,
    one_line,
    status_meaning,
)
from bot.sms.budget import Priority, RatePacer
from bot.sms.read_models import (
    Conversation,
    SmsMessage,
    e164,
    epoch_seconds,
    items_of,
)

__all__ = ["Conversation", "SmsMessage", "TwoChatClient", "TwoChatError", "e164", "epoch_seconds"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.p.2chat.io"
SEND_PATH = "/open/sms/send"
INFO_PATH = "/open/info"
CHANNELS_PATH = "/open/sms/channels"
CONVERSATIONS_PATH = "/open/sms/conversations/{channel}"
MESSAGES_PATH = "/open/sms/messages/{channel}/{contact}"
MESSAGE_PATH = "/open/sms/message/{uuid}"
REDACTED = "[redacted]"
# How often the read of the limit is tried while 2Chat answers it 429: the pacer's hold
# doubles at each 429 in a row, so these tries span more than 2Chat's minute.
LIMIT_READ_ATTEMPTS = 8


def _tail(number: str) -> str:
    """At most the last 4 digits of a number: enough to tell sends apart in logs."""
    return "…" + number[-4:]


def _text(response: aiohttp.ClientResponse, raw: bytes) -> str:
    """A body as text, in its declared charset when that is a text encoding."""
    try:
        return raw.decode(response.get_encoding(), errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


class _NoConnectionSlot(Exception):
    """Every connection to 2Chat stayed busy for as long as a call may wait for one."""


# Why a call got no answer, as ``on_failure`` hears it: the first two mean 2Chat cannot be
# reached at all; the others that it (or this process) is too slow.
FAILURE_REASONS = ("connect", "connect_timeout", "read_timeout", "disconnected", "busy")
UNREACHABLE_REASONS = frozenset(FAILURE_REASONS[:2])


def failure_reason(exc: BaseException) -> str:
    """One of ``FAILURE_REASONS`` for a transport failure."""
    for kind, reason in (
        (aiohttp.ConnectionTimeoutError, "connect_timeout"),
        (aiohttp.ClientConnectorError, "connect"),
        (_NoConnectionSlot, "busy"),
        (TimeoutError, "read_timeout"),  # aiohttp's ServerTimeoutError is one too
    ):
        if isinstance(exc, kind):
            return reason
    return "disconnected"


class TwoChatClient:
    """One shared connection pool to 2Chat; safe to use from many tasks at once."""

    dry_run = False  # a dry run's client (``bot.sms.dry_run``) calls 2Chat for nothing

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        max_connections: int = 50,
        on_status: Callable[[str, int, float], None] | None = None,
        on_failure: Callable[[str, str, str], None] | None = None,
        pacer: RatePacer | None = None,
    ) -> None:
        """``on_status(path, status, seconds)`` hears every answer: readiness learns from it
        whether the key or the credits ran out (no probe spends a credit), metrics count it.
        ``on_failure(path, reason, message)`` hears every call that got no answer, ``reason``
        one of ``FAILURE_REASONS``. ``pacer`` is the deployment's 2Chat budget: every read
        waits for it here, by its priority, and it hears every answer (429s hold it); a
        send's caller takes the send's start itself, before claiming it."""
        self._api_key = api_key
        self._pacer = pacer
        self._on_status = on_status
        self._on_failure = on_failure
        self._base_url = base_url.rstrip("/")
        self._read_timeout = read_timeout
        # aiohttp bounds each read, not the answer: a 2Chat dripping bytes slower than the
        # read timeout would hold a send "sending" for ever. This bounds the whole call, so
        # a send is finished before the sweeper could take it for one a crash cut off.
        self._call_limit = connect_timeout + read_timeout
        self._headers = {
            "X-User-API-Key": api_key,
            "Accept": "application/json",
            "User-Agent": "sms-bridge",
        }
        # ``connect`` also covers the DNS lookup, which ``sock_connect`` does not.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._max_connections = max_connections
        # The connector's own wait for a free connection times out like a slow connect (the
        # same exception); waiting here first tells a busy pool from an unreachable 2Chat.
        self._slots = asyncio.Semaphore(max_connections)
        self._http: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"TwoChatClient(base_url={self._base_url!r})"

    @property
    def call_limit(self) -> float:
        """The longest one call may take, in seconds (connect plus read timeout): after it,
        the bridge has given up on an answer, though 2Chat may still be working."""
        return self._call_limit

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        """The one session, made on first use: aiohttp needs a running event loop for it,
        and a client may be built before the loop runs."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers=self._headers,
                timeout=self._timeout,
            )
        return self._http

    # --- API ---------------------------------------------------------------------------
    async def send_sms(self, from_number: str, to_number: str, text: str) -> str:
        """Queue one SMS; returns 2Chat's message id (202 means queued, not delivered). The
        caller has its start from the pacer already."""
        body = await self._call(
            "POST",
            SEND_PATH,
            priority=None,
            json={"from_number": from_number, "to_number": to_number, "text": text},
            sending=True,
            log_context=f" from {_tail(from_number)} to {_tail(to_number)}",
        )
        for key in ("message_id", "message_uuid"):
            value = body.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        # 2Chat answered yes but did not say to what: it may well have queued the SMS.
        raise TwoChatError(
            "2Chat accepted the request but returned no message id", outcome_unknown=True
        )

    async def account_info(self) -> dict[str, Any]:
        """GET /open/info: the account, including its rate limits."""
        return await self._call("GET", INFO_PATH, priority=Priority.PAGE)

    async def requests_per_minute(self) -> int | None:
        """The account's rate limit (80, or 30 on trials), or None if 2Chat does not say.

        It is read after a 429 most of all, while 2Chat's minute is full: a 429 to the read
        is tried again once the pacer lets it (its hold growing at each 429 in a row)."""
        for attempt in range(1, LIMIT_READ_ATTEMPTS + 1):
            try:
                info = await self.account_info()
                break
            except TwoChatError as error:
                if not error.rate_limited or self._pacer is None or attempt == LIMIT_READ_ATTEMPTS:
                    raise
        for holder in (info, info.get("data")):
            limits = holder.get("limits") if isinstance(holder, dict) else None
            value = limits.get("requests_per_minute") if isinstance(limits, dict) else None
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float) and value > 0:
                return int(value)
            if isinstance(value, str) and value.strip().isdigit():
                return int(value.strip())
        return None

    async def list_channels(self) -> list[dict[str, Any]]:
        """The account's SMS numbers; the shape is undocumented, so accept both envelopes."""
        body = await self._call(
            "GET",
            CHANNELS_PATH,
            params={"page_number": 0, "results_per_page": 200},
            priority=Priority.POLL,
        )
        channels: Any = body.get("channels")
        if channels is None and isinstance(body.get("data"), dict):
            channels = body["data"].get("channels")
        if channels is None and "channels" not in body:
            raise TwoChatError("2Chat answered the channel list in an unexpected shape")
        if not isinstance(channels, list):
            return []
        return [channel for channel in channels if isinstance(channel, dict)]

    async def conversations(self, channel_uuid: str) -> list[Conversation]:
        """A channel's SMS conversations, newest first (one credit per call)."""
        path = CONVERSATIONS_PATH.format(channel=quote(channel_uuid, safe=""))
        body = await self._call("GET", path, priority=Priority.POLL)
        parsed = (Conversation.parse(item) for item in items_of(body, "conversations"))
        return [conversation for conversation in parsed if conversation is not None]

    async def messages(
        self, channel_uuid: str, contact: str, before_ts: int | None = None
    ) -> list[SmsMessage]:
        """One conversation's latest messages, oldest first (one credit per call)."""
        path = MESSAGES_PATH.format(
            channel=quote(channel_uuid, safe=""), contact=quote(contact, safe="+")
        )
        params = {"before_ts": before_ts} if before_ts is not None else None
        log_path = MESSAGES_PATH.format(channel=channel_uuid, contact=_tail(contact))
        body = await self._call(
            "GET", path, params=params, log_path=log_path, priority=Priority.POLL
        )
        parsed = (SmsMessage.parse(item) for item in items_of(body, "messages"))
        found = [message for message in parsed if message is not None]
        return sorted(found, key=lambda message: message.timestamp or 0)

    async def message(self, uuid: str) -> dict[str, Any]:
        """What 2Chat knows of one SMS (GET /open/sms/message/{uuid}); shape undocumented."""
        path = MESSAGE_PATH.format(uuid=quote(uuid, safe=""))
        body = await self._call("GET", path, priority=Priority.LOOKUP)
        for holder in (body, body.get("data")):
            found = holder.get("message") if isinstance(holder, dict) else None
            if isinstance(found, dict):
                return found
        return {key: value for key, value in body.items() if key != "success"}

    # --- plumbing ----------------------------------------------------------------------
    def _safe(self, text: str) -> str:
        """Belt and braces: the key must not leak even if 2Chat or aiohttp echo it."""
        return text.replace(self._api_key, REDACTED) if self._api_key else text

    async def _call(
        self,
        method: str,
        path: str,
        *,
        priority: Priority | None,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        sending: bool = False,
        log_context: str = "",
        log_path: str | None = None,
    ) -> dict[str, Any]:
        """Make one request and return its JSON object, or raise a ``TwoChatError``.

        The call first waits for the pacer at ``priority`` (None: the caller did).
        ``log_path`` stands for ``path`` in logs when the path holds a phone number."""
        if self._pacer is not None and priority is not None:
            await self._pacer.acquire(priority)
        started = time.monotonic()
        shown = log_path or path
        response, raw = await self._send(method, path, json, params, sending, shown + log_context)
        elapsed = (time.monotonic() - started) * 1000
        status = response.status
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if self._on_status is not None:
            self._on_status(path, status, elapsed / 1000)
        if self._pacer is not None:
            self._pacer.heard(status, retry_after)
        # A send's outcome is logged once, at INFO, by whoever made it; reads have no
        # such line, so their failures are logged here.
        level = logging.INFO if status >= 300 and not sending else logging.DEBUG
        fields = {"twochat_status": status, "latency_ms": round(elapsed)}
        message = "2Chat %s %s%s: HTTP %d in %.0f ms"
        logger.log(level, message, method, shown, log_context, status, elapsed, extra=fields)
        try:
            body: Any = json_loads(raw)
        except ValueError:
            raise self._non_json_error(status, _text(response, raw)[:4000], sending) from None
        if not 200 <= status < 300:
            raise self._status_error(status, body, sending, retry_after)
        if has_error_flag(body):
            detail = error_text(body)
            message = f"2Chat refused the request (HTTP {status})"
            if detail:
                message = f"{message}: {detail}"
            raise TwoChatError(self._safe(message), status=status, temporary=False)
        if not isinstance(body, dict):
            raise TwoChatError(
                f"2Chat answered HTTP {status} with an unexpected JSON body{maybe_sent(sending)}",
                status=status,
                outcome_unknown=sending,
            )
        return body

    async def _send(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None,
        params: dict[str, Any] | None,
        sending: bool,
        shown: str,
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Make the request and read the answer within the whole-call limit; a transport
        failure or the limit becomes a ``TwoChatError`` saying whether it may have been sent."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._call_limit):
                await self._take_slot()
                try:
                    async with self._session().request(
                        method,
                        self._base_url + path,
                        json=json,
                        params=params,
                        allow_redirects=False,
                    ) as response:
                        return response, await response.read()
                finally:
                    self._slots.release()
        except (aiohttp.ClientError, _NoConnectionSlot) as exc:
            # Before TimeoutError: aiohttp's own timeouts are TimeoutErrors too.
            elapsed = (time.monotonic() - started) * 1000
            error = self._transport_error(exc, sending)
            self._failed(path, exc, error)
            logger.warning(
                "2Chat %s %s failed after %.0f ms: %s (temporary=%s)",
                method,
                shown,
                elapsed,
                type(exc).__name__,
                error.temporary,
            )
            raise error from exc
        except TimeoutError as exc:
            logger.warning("2Chat %s %s: no full answer in time", method, shown)
            error = TwoChatError(
                f"2Chat did not finish answering within {self._call_limit:g} s"
                + maybe_sent(sending),
                temporary=not sending,
                outcome_unknown=sending,
            )
            self._failed(path, exc, error)
            raise error from exc

    def _failed(self, path: str, exc: BaseException, error: TwoChatError) -> None:
        if self._on_failure is not None:
            self._on_failure(path, failure_reason(exc), str(error))

    async def _take_slot(self) -> None:
        """Wait for a free connection at most as long as for an answer."""
        try:
            async with asyncio.timeout(self._read_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise _NoConnectionSlot from None

    def _status_error(
        self, status: int, body: Any, sending: bool, wait: float | None
    ) -> TwoChatError:
        meaning, temporary = status_meaning(status)
        unknown = sending and may_have_sent(status, temporary)
        message = f"{meaning} (HTTP {status})" if meaning else f"2Chat answered HTTP {status}"
        error = self._failure(message, error_text(body), status, temporary, unknown)
        error.retry_after = wait
        return error

    def _non_json_error(self, status: int, text: str, sending: bool) -> TwoChatError:
        """HTML error pages and the like: say so, with a short excerpt and never headers."""
        meaning, temporary = status_meaning(status) if not 200 <= status < 300 else (None, False)
        unknown = sending and may_have_sent(status, temporary)
        if meaning:
            message = f"{meaning} (HTTP {status} with a non-JSON body)"
        else:
            message = f"2Chat answered HTTP {status} with a non-JSON body"
        return self._failure(message, excerpt(text), status, temporary, unknown)

    def _failure(
        self, message: str, detail: str | None, status: int, temporary: bool, unknown: bool
    ) -> TwoChatError:
        """An error answer as one scrubbed message: what it means, 2Chat's own words, and
        whether the SMS may have gone anyway."""
        if detail:
            message = f"{message}: {detail}"
        return TwoChatError(
            self._safe(message + maybe_sent(unknown)),
            status=status,
            temporary=temporary,
            outcome_unknown=unknown,
        )

    def _transport_error(
        self, exc: aiohttp.ClientError | _NoConnectionSlot, sending: bool
    ) -> TwoChatError:
        """Temporary only when the request surely never left (or when it was a read)."""
        warning = maybe_sent(sending)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return TwoChatError("Could not connect to 2Chat (timed out)", temporary=True)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return TwoChatError(f"Could not connect to 2Chat: {self._reason(exc)}", temporary=True)
        if isinstance(exc, _NoConnectionSlot):
            return TwoChatError(
                "Could not get a connection to 2Chat in time (too many requests in flight)",
                temporary=True,
            )
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return TwoChatError(
                f"2Chat did not answer within {self._read_timeout:g} s{warning}",
                temporary=not sending,
                outcome_unknown=sending,
            )
        if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
            return TwoChatError(
                "Cannot call 2Chat: its API URL must be an absolute http(s) URL", temporary=False
            )
        return TwoChatError(
            f"The connection to 2Chat failed: {self._reason(exc)}{warning}",
            temporary=not sending,
            outcome_unknown=sending,
        )

    def _reason(self, exc: aiohttp.ClientError) -> str:
        """A transport failure in a few words and without the key; a malformed answer is
        told without its URL, which may hold a contact's number."""
        if isinstance(exc, aiohttp.ClientConnectorError):
            text = exc.strerror or str(exc)  # the OS's words, without aiohttp's preamble
        elif isinstance(exc, aiohttp.ClientResponseError):
            text = exc.message
        else:
            text = str(exc)
        return self._safe(one_line(text or type(exc).__name__, 80))
