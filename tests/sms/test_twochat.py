"""The 2Chat client against the local stand-in, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot.errors import TwoChatError
from bot.sms.budget import RatePacer
from bot.sms.twochat import TwoChatClient
from tests.fakes.raw_http import RawHttpServer, answer_with
from tests.fakes.twochat_server import TwoChatStandIn
from tests.sending.drip import DrippingTwoChat

KEY = "test-2chat-key-s3cr3t-value"
FROM = "+17137157533"
TO = "+442079460958"
MAYBE_SENT = "; the message may or may not have been sent"


@pytest.fixture
def standin() -> Iterator[TwoChatStandIn]:
    with TwoChatStandIn(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(standin: TwoChatStandIn) -> AsyncIterator[TwoChatClient]:
    async with TwoChatClient(KEY, standin.url, connect_timeout=0.5, read_timeout=0.5) as twochat:
        yield twochat


async def send_error(client: TwoChatClient) -> TwoChatError:
    with pytest.raises(TwoChatError) as caught:
        await client.send_sms(FROM, TO, "hello")
    return caught.value


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listener never accepts and whose backlog is full: Linux drops further
    connection attempts, so a connect hangs as it does to a host that is down."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        fillers = [socket.socket() for _ in range(2)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.05)
        yield port
        for filler in fillers:
            filler.close()


# --- success ---------------------------------------------------------------------------
async def test_send_returns_message_id_and_posts_the_documented_body(
    client: TwoChatClient, standin: TwoChatStandIn
) -> None:
    message_id = await client.send_sms(FROM, TO, "hello ✓")
    assert message_id.startswith("SMO")
    assert standin.sends == [{"from_number": FROM, "to_number": TO, "text": "hello ✓"}]
    assert standin.records[0].api_key_valid
    assert standin.records[0].status == 202


async def test_message_uuid_is_accepted_as_the_id(
    client: TwoChatClient, standin: TwoChatStandIn
) -> None:
    standin.respond(200, {"success": True, "message_uuid": "SMOabc"})
    assert await client.send_sms(FROM, TO, "hi") == "SMOabc"


@pytest.mark.parametrize("base", ["", "/"])
async def test_base_url_with_or_without_trailing_slash(standin: TwoChatStandIn, base: str) -> None:
    async with TwoChatClient(KEY, standin.url + base) as twochat:
        assert (await twochat.send_sms(FROM, TO, "hi")).startswith("SMO")
    assert standin.requests == ["POST /open/sms/send"]


# --- errors by status --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "words", "temporary"),
    [
        (400, "bad JSON", False),
        (401, "rejected the API key", False),
        (402, "no credits left or its trial has expired", False),
        (403, "forbidden", False),
        (404, "not found", False),
        (406, "does not support this operation", False),
        (422, "malformed (numbers must be E.164)", False),
        (429, "rate limit", True),
        (486, "busy", True),
        (500, "server error", False),
        (502, "server error", False),
        (503, "temporarily unavailable", True),
        (504, "gateway timed out", True),
        (418, "2Chat answered HTTP 418", False),
    ],
)
async def test_error_statuses(
    client: TwoChatClient, standin: TwoChatStandIn, status: int, words: str, temporary: bool
) -> None:
    standin.respond(status, {"error": True, "error_message": "details from 2Chat"})
    error = await send_error(client)
    assert words in str(error)
    assert f"HTTP {status}" in str(error)
    assert "details from 2Chat" in str(error)
    assert error.status == status
    assert error.temporary is temporary


async def test_real_checks_of_the_standin_come_back_as_errors(standin: TwoChatStandIn) -> None:
    async with TwoChatClient("wrong-key", standin.url) as wrong:
        error = await send_error(wrong)
    assert (error.status, error.temporary) == (401, False)
    assert str(error) == "2Chat rejected the API key (HTTP 401): Invalid API key"
    async with TwoChatClient(KEY, standin.url) as twochat:
        with pytest.raises(TwoChatError) as caught:
            await twochat.send_sms(FROM, "07700900123", "hi")
    assert caught.value.status == 422
    assert "to_number must be a phone number in E.164 format" in str(caught.value)
    assert len(standin.sends) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"error": True, "error_message": "from_number is not SMS-enabled"},
        {"success": False, "error_message": "from_number is not SMS-enabled"},
        {"message": "from_number is not SMS-enabled"},
        {"error": "from_number is not SMS-enabled"},
    ],
)
async def test_every_error_body_shape_gives_2chats_text(
    client: TwoChatClient, standin: TwoChatStandIn, body: dict[str, Any]
) -> None:
    standin.respond(403, body)
    error = await send_error(client)
    assert str(error).endswith(": from_number is not SMS-enabled")


async def test_html_error_page_does_not_crash(
    client: TwoChatClient, standin: TwoChatStandIn
) -> None:
    page = "<html>\n<head><title>500 Internal Server Error</title></head>\n<body>" + "x" * 500
    standin.respond(500, page, content_type="text/html; charset=utf-8")
    error = await send_error(client)
    message = str(error)
    assert "HTTP 500 with a non-JSON body" in message
    assert "500 Internal Server Error" in message
    assert "<" not in message and "\n" not in message
    assert len(message) < 250
    assert "content-type" not in message.lower()
    assert (error.status, error.temporary) == (500, False)


async def test_a_charset_that_is_no_text_encoding_does_not_crash(
    client: TwoChatClient, standin: TwoChatStandIn
) -> None:
    standin.respond(502, "<h1>Bad gateway</h1>", content_type="text/html; charset=base64")
    error = await send_error(client)
    assert str(error) == (
        "2Chat server error (bad gateway) (HTTP 502 with a non-JSON body): Bad gateway" + MAYBE_SENT
    )


async def test_empty_503_is_temporary(client: TwoChatClient, standin: TwoChatStandIn) -> None:
    standin.respond(503, None, content_type="text/plain")
    error = await send_error(client)
    assert (error.status, error.temporary) == (503, True)
    assert "non-JSON" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "error_message": "number not enabled"},
        {"error": True, "error_message": "number not enabled", "message_id": "SMOx"},
    ],
)
async def test_2xx_with_an_error_flag_is_an_error(
    client: TwoChatClient, standin: TwoChatStandIn, body: dict[str, Any]
) -> None:
    standin.respond(202, body)
    error = await send_error(client)
    assert "number not enabled" in str(error)
    assert (error.status, error.temporary) == (202, False)


async def test_2xx_without_an_id_is_an_error(
    client: TwoChatClient, standin: TwoChatStandIn
) -> None:
    standin.respond(202, {"success": True})
    error = await send_error(client)
    assert str(error) == "2Chat accepted the request but returned no message id"
    assert error.temporary is False


async def test_scripts_run_out_after_times(client: TwoChatClient, standin: TwoChatStandIn) -> None:
    standin.respond(429, {"error": True, "error_message": "slow down"}, times=1)
    assert (await send_error(client)).temporary
    assert (await client.send_sms(FROM, TO, "again")).startswith("SMO")
    assert [record.status for record in standin.records] == [429, 202]


# --- transport failures ------------------------------------------------------------------
async def test_read_timeout_is_not_safe_to_retry(standin: TwoChatStandIn) -> None:
    standin.set_delay(1.0)
    async with TwoChatClient(KEY, standin.url, read_timeout=0.2) as twochat:
        started = time.monotonic()
        error = await send_error(twochat)
    assert time.monotonic() - started < 0.9
    assert str(error) == "2Chat did not answer within 0.2 s" + MAYBE_SENT
    assert (error.temporary, error.outcome_unknown) == (False, True)
    assert len(standin.wait_for_sends(1)) == 1


async def test_read_timeout_of_a_read_is_temporary() -> None:
    with RawHttpServer() as silent:
        async with TwoChatClient(KEY, silent.url, read_timeout=0.2) as twochat:
            with pytest.raises(TwoChatError) as caught:
                await twochat.account_info()
    assert str(caught.value) == "2Chat did not answer within 0.2 s"
    assert (caught.value.temporary, caught.value.outcome_unknown) == (True, False)


async def test_hung_2chat_times_out_and_reset_lets_it_go(standin: TwoChatStandIn) -> None:
    standin.hang()
    async with TwoChatClient(KEY, standin.url, read_timeout=0.2) as twochat:
        assert (await send_error(twochat)).temporary is False
        standin.reset()
        assert (await twochat.send_sms(FROM, TO, "back")).startswith("SMO")


async def test_connection_refused_is_temporary() -> None:
    async with TwoChatClient(KEY, f"http://127.0.0.1:{closed_port()}") as twochat:
        error = await send_error(twochat)
    assert str(error).startswith("Could not connect to 2Chat: Connect call failed")
    assert (error.temporary, error.outcome_unknown) == (True, False)
    assert error.status is None


async def test_connect_timeout_is_temporary(unanswered_port: int) -> None:
    url = f"http://127.0.0.1:{unanswered_port}"
    async with TwoChatClient(KEY, url, connect_timeout=0.2, read_timeout=5) as twochat:
        started = time.monotonic()
        error = await send_error(twochat)
    assert time.monotonic() - started < 2  # the connect timeout, not the 5.2 s call limit
    assert str(error) == "Could not connect to 2Chat (timed out)"
    assert (error.temporary, error.outcome_unknown) == (True, False)


async def test_connection_closed_after_the_request_is_not_safe_to_retry() -> None:
    with RawHttpServer(answer_with(b"")) as closing:
        async with TwoChatClient(KEY, closing.url) as twochat:
            error = await send_error(twochat)
        assert closing.requests == ["POST /open/sms/send"]  # sent once, never resent
    assert str(error).startswith("The connection to 2Chat failed: ")
    assert str(error).endswith(MAYBE_SENT)
    assert (error.temporary, error.outcome_unknown) == (False, True)


async def test_connection_closed_mid_answer_is_not_safe_to_retry() -> None:
    half = (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"success": true, "mess'
    )
    with RawHttpServer(answer_with(half)) as closing:
        async with TwoChatClient(KEY, closing.url) as twochat:
            error = await send_error(twochat)
        assert closing.requests == ["POST /open/sms/send"]
    assert str(error).startswith("The connection to 2Chat failed: ")
    assert str(error).endswith(MAYBE_SENT)
    assert (error.temporary, error.outcome_unknown) == (False, True)
    assert error.status is None


async def test_an_answer_dripping_past_the_call_limit_is_cut_off() -> None:
    with DrippingTwoChat(gap=0.05) as dripping:
        async with TwoChatClient(
            KEY, dripping.url, connect_timeout=0.2, read_timeout=0.3
        ) as twochat:
            started = time.monotonic()
            error = await send_error(twochat)
            elapsed = time.monotonic() - started
        assert dripping.sends == 1
    # every byte came within the read timeout: only the whole-call limit stopped it
    assert 0.5 <= elapsed < 1.5
    assert str(error) == "2Chat did not finish answering within 0.5 s" + MAYBE_SENT
    assert (error.temporary, error.outcome_unknown) == (False, True)


async def test_waiting_too_long_for_a_connection_is_temporary() -> None:
    with DrippingTwoChat(gap=0.05) as dripping:
        async with TwoChatClient(
            KEY, dripping.url, connect_timeout=0.5, read_timeout=0.2, max_connections=1
        ) as twochat:
            holder = asyncio.create_task(twochat.send_sms(FROM, TO, "holds the connection"))
            await asyncio.sleep(0.05)
            error = await send_error(twochat)
            with pytest.raises(TwoChatError):  # cut off by the call limit
                await holder
        assert dripping.sends == 1  # the second send never left
    assert str(error) == (
        "Could not get a connection to 2Chat in time (too many requests in flight)"
    )
    assert (error.temporary, error.outcome_unknown) == (True, False)


async def test_a_redirect_is_not_followed(standin: TwoChatStandIn) -> None:
    redirect = (
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {standin.url}/open/sms/send\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    with RawHttpServer(answer_with(redirect)) as redirecting:
        async with TwoChatClient(KEY, redirecting.url) as twochat:
            error = await send_error(twochat)
    assert standin.sends == []
    assert str(error) == "2Chat answered HTTP 307 with a non-JSON body"
    assert (error.status, error.temporary, error.outcome_unknown) == (307, False, False)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:21", "127.0.0.1:80", ""])
async def test_a_url_that_is_not_http_is_not_temporary(url: str) -> None:
    async with TwoChatClient(KEY, url) as twochat:
        error = await send_error(twochat)
    assert str(error) == "Cannot call 2Chat: its API URL must be an absolute http(s) URL"
    assert (error.temporary, error.outcome_unknown) == (False, False)


def test_built_outside_an_event_loop(standin: TwoChatStandIn) -> None:
    """The app builds its parts before the loop runs; the session waits for the first call."""
    twochat = TwoChatClient(KEY, standin.url)

    async def use() -> str:
        async with twochat:
            return await twochat.send_sms(FROM, TO, "hi")

    assert asyncio.run(use()).startswith("SMO")


# --- secrets -------------------------------------------------------------------------------
async def test_api_key_never_in_errors_reprs_or_logs(
    standin: TwoChatStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with TwoChatClient(KEY, standin.url, read_timeout=0.2) as twochat:
        assert KEY not in repr(twochat)
        await twochat.send_sms(FROM, TO, "ok")
        standin.respond(401, {"error": True, "error_message": f"bad key {KEY}"}, times=1)
        standin.respond(500, f"<p>key was {KEY}</p>", content_type="text/html", times=1)
        errors.append(await send_error(twochat))
        errors.append(await send_error(twochat))
        standin.set_delay(1.0)
        errors.append(await send_error(twochat))
    async with TwoChatClient(KEY, f"http://127.0.0.1:{closed_port()}") as refused:
        errors.append(await send_error(refused))
    for error in errors:
        assert KEY not in str(error) and KEY not in repr(error)
        assert error.__cause__ is None or KEY not in str(error.__cause__)
    assert "[redacted]" in str(errors[0])
    assert caplog.records, "the client should log its calls"
    assert KEY not in caplog.text
    assert FROM not in caplog.text and TO not in caplog.text
    assert any("0958" in record.getMessage() for record in caplog.records)


async def test_a_contacts_number_in_a_url_is_never_logged(
    client: TwoChatClient, standin: TwoChatStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    standin.inbound(TO, "hello")
    assert len(await client.messages("SMS1", TO)) == 1
    assert standin.api_calls("GET /open/sms/messages/") == [f"GET /open/sms/messages/SMS1/{TO}"]
    assert TO[1:] not in caplog.text
    assert "/open/sms/messages/SMS1/…0958" in caplog.text


# --- concurrency ---------------------------------------------------------------------------
async def test_concurrent_sends_share_the_pool(
    client: TwoChatClient, standin: TwoChatStandIn
) -> None:
    delay = 0.2
    standin.set_delay(delay)
    started = time.monotonic()
    ids = await asyncio.gather(*(client.send_sms(FROM, TO, f"n{i}") for i in range(20)))
    elapsed = time.monotonic() - started
    assert len(set(ids)) == 20
    assert elapsed < 5 * delay
    assert sorted(send["text"] for send in standin.wait_for_sends(20)) == sorted(
        f"n{i}" for i in range(20)
    )


# --- read endpoints ------------------------------------------------------------------------
async def test_requests_per_minute(client: TwoChatClient, standin: TwoChatStandIn) -> None:
    assert await client.requests_per_minute() == 80
    standin.requests_per_minute = 30
    assert await client.requests_per_minute() == 30
    standin.requests_per_minute = None
    assert await client.requests_per_minute() is None
    assert (await client.account_info())["success"] is True


async def test_the_limit_read_while_2chats_minute_is_full_waits_for_it(
    standin: TwoChatStandIn,
) -> None:
    """The limit is read again after 429s, so most likely into a full minute: a 429 to the
    read is tried again once the pacer's hold (here 2Chat's Retry-After) is over."""
    standin.limit(1, window=0.3, retry_after=0.3)
    pacer = RatePacer(600)
    async with TwoChatClient(KEY, standin.url, pacer=pacer) as twochat:
        assert (await twochat.send_sms(FROM, TO, "spends the minute")).startswith("SMO")
        assert await twochat.requests_per_minute() == 1
    assert standin.refused == ["GET /open/info"]


@pytest.mark.parametrize("envelope", ["channels", "data"])
async def test_list_channels_in_both_shapes(
    client: TwoChatClient, standin: TwoChatStandIn, envelope: str
) -> None:
    standin.channels_envelope = envelope  # type: ignore[assignment]
    channels = await client.list_channels()
    assert [channel["phone_number"] for channel in channels] == ["+17137157533"]
    assert channels[0]["supports_sms_out"] is True


async def test_read_endpoints_report_a_wrong_key(standin: TwoChatStandIn) -> None:
    async with TwoChatClient("nope", standin.url) as twochat:
        with pytest.raises(TwoChatError) as caught:
            await twochat.list_channels()
    assert caught.value.status == 401


def test_standin_wait_for_sends_reports_what_arrived(standin: TwoChatStandIn) -> None:
    with pytest.raises(AssertionError, match="got 0"):
        standin.wait_for_sends(1, timeout=0.05)
