"""Before a Retry sends again, ask 2Chat whether it has the SMS already.

A send whose outcome is unknown (the process died during the call, the answer was lost)
may well have been accepted: 2Chat then lists it in the number's conversation. Finding it
there turns "unknown" into "sent" with 2Chat's own message id, and nobody is texted twice.
"""

from __future__ import annotations

from datetime import timedelta

from bot.sms.twochat import TwoChatClient, e164
from bot.store import SendRecord, StoredRequest

# 2Chat counts whole seconds and clocks differ: an SMS stamped a little before the claim
# that sent it is still that send's.
CLOCK_SKEW = timedelta(minutes=2)


async def sent_like(twochat: TwoChatClient, request: StoredRequest, send: SendRecord) -> list[str]:
    """2Chat's message ids of SMS with the request's text to the send's number, sent since
    the send was claimed (the caller leaves out those another send recorded). Raises
    TwoChatError when 2Chat cannot be asked. Each read waits for the 2Chat budget in the
    client, like every read."""
    if send.claimed_at is None:
        return []  # never claimed: it never reached 2Chat
    channels = await twochat.list_channels()
    channel = next(
        (
            str(c["uuid"])
            for c in channels
            if isinstance(c.get("phone_number"), str)
            and e164(c["phone_number"]) == request.from_number
            and c.get("uuid")
        ),
        None,
    )
    if channel is None:
        return []
    since = int((send.claimed_at - CLOCK_SKEW).timestamp())
    return [
        message.uuid
        for message in await twochat.messages(channel, send.number)
        if message.direction == "outbound"
        and message.text == request.text
        and (message.timestamp is None or message.timestamp >= since)
    ]
