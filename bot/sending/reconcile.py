"""Before a Retry sends again, ask 2Chat whether it has the SMS already.

A send whose outcome is unknown (the process died during the call, the answer was lost)
may well have been accepted: 2Chat then lists it in the number's conversation. Finding it
there turns "unknown" into "sent" with 2Chat's own message id, and nobody is texted twice.
That answer is only good once 2Chat has finished with the attempt: a call the bridge gave
up on may still be running at 2Chat, and its SMS is not listed until it is accepted. So a
Retry waits until the attempt has settled (``settled_at``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.sms.twochat import TwoChatClient, e164
from bot.store import SendRecord, StoredRequest

# 2Chat counts whole seconds and clocks differ: an SMS stamped a little before the claim
# that sent it is still that send's.
CLOCK_SKEW = timedelta(minutes=2)
# How many whole 2Chat call limits an unknown outcome settles for before a Retry may ask
# 2Chat about it: the attempt reached 2Chat before the outcome became unknown, and 2Chat
# then gets twice as long as the bridge waited for it (and clocks some room) to accept or
# drop it. The default call limit (5 s + 15 s) makes that one minute.
SETTLE_CALL_LIMITS = 3


def settled_at(send: SendRecord, call_limit: float) -> datetime | None:
    """When a Retry may first act on ``send``: None unless its outcome is unknown (a failed
    send was refused by 2Chat, or never reached it)."""
    if send.state != "unknown":
        return None
    return send.updated_at + timedelta(seconds=SETTLE_CALL_LIMITS * call_limit)


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
