"""docs/2chat.md's table of statuses says what the client does with each: checked by
sending through the client to the 2Chat stand-in answering that status."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.errors import TwoChatError
from bot.sms.twochat import TwoChatClient
from tests.fakes.twochat_server import TwoChatStandIn

KEY = "test-2chat-key-s3cr3t-value"
DOC = Path(__file__).resolve().parents[2] / "docs" / "2chat.md"


def documented() -> dict[int, str]:
    """Each status the table names, with what the table says the bridge does."""
    found: dict[int, str] = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.match(r"^\d{3}\b", cells[0]):
            continue
        for status in re.findall(r"\b[1-5]\d{2}\b", cells[0]):
            found[int(status)] = cells[2]
    return found


@pytest.fixture(scope="module")
def standin() -> Iterator[TwoChatStandIn]:
    with TwoChatStandIn(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(standin: TwoChatStandIn) -> AsyncIterator[TwoChatClient]:
    standin.reset()
    async with TwoChatClient(KEY, standin.url) as twochat:
        yield twochat


def test_the_table_covers_every_5xx_2chat_documents() -> None:
    assert {500, 502, 503, 504} <= set(documented())


@pytest.mark.parametrize("status", sorted(documented()))
async def test_the_client_does_what_the_table_says(
    status: int, client: TwoChatClient, standin: TwoChatStandIn
) -> None:
    said = documented()[status]
    standin.respond(status, {"error": True, "error_message": "scripted"})
    with pytest.raises(TwoChatError) as caught:
        await client.send_sms("+17137157533", "+442079460958", "hello")
    error = caught.value
    retried = re.search(r"(?<!not )(?<!never )\bretried\b", said) is not None
    assert error.temporary == retried, (status, said)
    assert error.outcome_unknown == ("outcome unknown" in said), (status, said)
