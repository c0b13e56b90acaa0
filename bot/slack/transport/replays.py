"""Replayed Slack requests: refused without a database round trip of their own.

Slack signs every delivery afresh (its Events API retries too), so an identical signature
and timestamp is someone replaying a captured request: a replayed ``/sms`` would text
everyone again. Two defences, neither costing a store call of its own:

* each process remembers the signatures it served within ``REPLAY_WINDOW`` and answers a
  replay with an empty 200;
* the request that a signed Slack request records claims the signature in the same
  transaction: ``Bridge`` puts the claim on the request's ``Origin`` (``serving_claim``),
  so a replay sent to another process records nothing.

Everything else a Slack request can do is idempotent by itself (an approval's first decision
wins, an event id is claimed once, a Retry retries once), so a replay that reaches another
process repeats at most a read, such as ``/sms help``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

from slack_sdk.signature import SignatureVerifier

# Slack refuses timestamps older than five minutes, so a signature is replayable that long;
# a minute more covers clock skew between us and whoever replays it.
REPLAY_WINDOW = timedelta(minutes=6)


class SignatureClaim:
    """The signature of the Slack request being served, for the first request it records
    (and only the first: one delivery may record several); a ``ReplayClaim``."""

    def __init__(self, key: str) -> None:
        self._key: str | None = key

    def take(self) -> tuple[str, timedelta] | None:
        """(key, how long to keep it) the first time, None after."""
        key, self._key = self._key, None
        return (key, REPLAY_WINDOW) if key is not None else None


_SERVING: ContextVar[SignatureClaim | None] = ContextVar("sms_bridge_signature", default=None)


def serving_claim() -> SignatureClaim | None:
    """The claim of the signed request being served, for its ``Origin``; None when not
    serving a signed request (Socket Mode, background work)."""
    return _SERVING.get()


def take_signature() -> tuple[str, timedelta] | None:
    """The (key, ttl) a request recorded now must claim with it, or None: not serving a
    signed request, or another record took it."""
    claim = _SERVING.get()
    return claim.take() if claim is not None else None


# Slack signs with the time of sending and its verifier refuses a request older than this.
SIGNATURE_MAX_AGE = timedelta(minutes=5)


def signature_problem(
    verifier: SignatureVerifier, raw: str, headers: Mapping[str, str], now: float
) -> str | None:
    """Why a request is not one Slack signed, in words safe to log (never the body, which
    can carry a response_url that posts into a channel); None when it is Slack's."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return "no X-Slack-Signature or X-Slack-Request-Timestamp header"
    if not timestamp.isdigit():
        return "the request timestamp is not a number"
    if abs(now - int(timestamp)) > SIGNATURE_MAX_AGE.total_seconds():
        return "the request timestamp is more than 5 minutes from now (stale or replayed)"
    if not verifier.is_valid(raw, timestamp, signature):
        return "the signature does not match the body (wrong signing secret, or altered)"
    return None


class ReplayGuard:
    """Refuses a second delivery of the same signed request (see the module docstring)."""

    def __init__(
        self,
        signing_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = 100_000,
    ) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self._clock = clock
        self._capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> when it may be forgotten

    @contextmanager
    def serving(self, raw: str, headers: Mapping[str, str]) -> Iterator[bool]:
        """Yields True for a replay of a verified request this process served; otherwise
        the request is served with its signature ready to be claimed (``serving_claim``).
        Requests Slack did not sign are refused before (``refusal``) and never remembered."""
        key = self._verified_key(raw, headers)
        if key is None:
            yield False
            return
        if not self._first_sight(key):
            yield True
            return
        token = _SERVING.set(SignatureClaim(key))
        try:
            yield False
        finally:
            _SERVING.reset(token)

    def refusal(self, raw: str, headers: Mapping[str, str]) -> str | None:
        """Why this request is not Slack's (see ``signature_problem``), or None."""
        return signature_problem(self.verifier, raw, headers, time.time())

    def _verified_key(self, raw: str, headers: Mapping[str, str]) -> str | None:
        if self.refusal(raw, headers) is not None:
            return None  # not Slack's: refused before it is served
        timestamp = headers["X-Slack-Request-Timestamp"]
        return f"slack-signature:{timestamp}:{headers['X-Slack-Signature']}"

    def _first_sight(self, key: str) -> bool:
        """Remember ``key``; False if it was seen within the window. Oldest first, so
        forgetting expired keys stops at the first live one; ``capacity`` bounds memory."""
        now = self._clock()
        while self._seen and (
            next(iter(self._seen.values())) <= now or len(self._seen) >= self._capacity
        ):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now + REPLAY_WINDOW.total_seconds()
        return True
