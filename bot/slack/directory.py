"""Slack as a roster: user group members and profile phones, read for the policy.

The policy is pure, so listeners and the send path ask ``SlackDirectory.snapshot`` first and
pass the ``Directory`` it returns into ``decide``. Answers are cached for ``ttl`` seconds:
people @-mention a roster far more often than it changes, and Slack rate-limits these
methods. A failed lookup is not cached; its group is left out of the snapshot's members
and put in its ``unread`` with the cause, so the decision says the roster could not be read
(and why) instead of texting nobody or calling someone "not allowed"; a profile that could
not be read is "lookup failed", never "no phone number".

A lookup runs to its end even when the decision that asked stopped waiting (Slack's answer
is due in 3 seconds): at most ``LOOKUPS_AT_ONCE`` profiles are read at a time, paced by a
token bucket under users.profile.get's documented tier, a rate limit (HTTP 429) that comes
anyway is waited out for its Retry-After, and what comes back is cached,
so the next page of the same roster finds it. Work that no Slack request waits for (an
auto-page, a ladder's tier, a send after its approval) waits ``PATIENCE`` seconds for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.directory import EMPTY_DIRECTORY, USER_ID, Directory
from bot.core.model import Policy
from bot.core.phone import parse_number
from bot.core.retry_after import header_retry_after
from bot.core.token_bucket import TokenBucket
from bot.errors import InvalidNumber
from bot.slack.reporter import SLACK_ERRORS

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TTL = 60.0
# Profile lookups at once: a large roster must not burst past users.profile.get's limit.
LOOKUPS_AT_ONCE = 8
# users.profile.get is a Tier 4 method: "100+ per minute", short bursts allowed
# (https://api.slack.com/methods/users.profile.get, https://api.slack.com/apis/rate-limits).
# Lookups are paced to stay within it: PROFILE_BURST at once, the rest of the minute's
# calls spread evenly (SLACK_PROFILE_LOOKUPS_PER_MINUTE sets the minute's count).
PROFILE_LOOKUPS_PER_MINUTE = 100
PROFILE_BURST = 20
# Lookups run before Slack's 3-second answer is due: a snapshot waits this long in all.
LOOKUP_DEADLINE = 1.5
# How long a snapshot for work no Slack request waits for may take (rate limits waited out).
PATIENCE = 30.0
# No lookup runs longer than this, Retry-After waits included.
LOOKUP_LIMIT = 300.0
# The pause after a 429 that carries no usable Retry-After (Slack always sends one).
UNSAID_RETRY_AFTER = 1.0
_LOOKUP_ERRORS = (*SLACK_ERRORS, aiohttp.ClientError, TimeoutError)


class SlackDirectory:
    """Reads user group members (``usergroups.users.list``) and, when the policy turns it
    on, profile phones (``users.profile.get``), each cached for ``ttl`` seconds."""

    def __init__(
        self,
        client: AsyncWebClient,
        ttl: float = DEFAULT_TTL,
        profiles_per_minute: float = PROFILE_LOOKUPS_PER_MINUTE,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._profile_pace = TokenBucket(
            profiles_per_minute, max(1, min(PROFILE_BURST, int(profiles_per_minute) // 5))
        )
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._phones: dict[str, tuple[float, str]] = {}
        self._lookups = asyncio.Semaphore(LOOKUPS_AT_ONCE)
        # Lookups under way, by cache key: shared by every snapshot that wants them, and
        # kept running (and referenced) past the deadline of the one that started them.
        self._running: dict[str, asyncio.Task[Lookup[Any]]] = {}

    async def snapshot(self, policy: Policy, *, patient: bool = False) -> Directory:
        """What ``policy`` needs from Slack now: the members of every user group it names,
        and profile phones for the linked people the file gives no number; within
        ``LOOKUP_DEADLINE`` in all, or ``PATIENCE`` when ``patient``."""
        deadline = time.monotonic() + (PATIENCE if patient else LOOKUP_DEADLINE)
        groups = sorted(policy.user_groups())
        profiles = policy.defaults.slack_profile_numbers
        if not groups and not (profiles and policy.contact_slack):
            return EMPTY_DIRECTORY  # a policy that names no Slack people costs no calls
        members: dict[str, frozenset[str]] = {}
        unread: dict[str, str] = {}
        for group, found in zip(
            groups,
            await asyncio.gather(*(self._members(group, deadline) for group in groups)),
            strict=True,
        ):
            if found.value is None:
                unread[group] = found.failed or "not read"
            else:
                members[group] = found.value
        phones: dict[str, str] = {}
        phones_unread: dict[str, str] = {}
        if profiles:
            rosters = [members.get(group, frozenset()) for group in policy.slack_groups.values()]
            wanted = sorted(_numberless(policy, rosters))
            numbers = await asyncio.gather(
                *(self._phone(user, policy, deadline) for user in wanted)
            )
            for user, number in zip(wanted, numbers, strict=True):
                if number.value is not None:
                    phones[user] = number.value
                elif number.failed:
                    phones_unread[user] = number.failed
        return Directory(members, phones, unread, phones_unread)

    async def _members(self, group: str, deadline: float) -> Lookup[frozenset[str]]:
        async def fetch() -> frozenset[str]:
            answer = await self._client.usergroups_users_list(usergroup=group)
            users = answer.get("users") or []
            return frozenset(u for u in users if isinstance(u, str) and USER_ID.fullmatch(u))

        return await self._cached(self._groups, group, fetch, deadline)

    async def _phone(self, user: str, policy: Policy, deadline: float) -> Lookup[str]:
        async def fetch() -> str:
            async with self._lookups:
                await asyncio.sleep(self._profile_pace.reserve(time.monotonic()))
                answer = await self._client.users_profile_get(user=user)
            profile = answer.get("profile") or {}
            return str(profile.get("phone") or "") if isinstance(profile, dict) else ""

        raw = await self._cached(self._phones, user, fetch, deadline)
        if not raw.value:  # no phone on the profile, or the lookup failed (and why)
            return Lookup(None, raw.failed)
        try:
            return Lookup(parse_number(raw.value, policy.defaults.region))
        except InvalidNumber:
            logger.info("Slack profile phone of %s is not a phone number; not used", user)
            return Lookup(None)

    async def _cached(
        self,
        cache: dict[str, tuple[float, T]],
        key: str,
        fetch: Callable[[], Awaitable[T]],
        deadline: float,
    ) -> Lookup[T]:
        """``fetch``'s answer, reused for ``ttl`` seconds; if it is not in by ``deadline``
        (it goes on, and is cached when it comes) or failed (not cached), why not."""
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return Lookup(hit[1])
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(cache, key, fetch), name=f"slack-lookup-{key}")
            self._running[key] = task
        try:
            found: Lookup[T] = await asyncio.wait_for(
                asyncio.shield(task), max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            why = "Slack did not answer in time; still asking"
            logger.warning("Slack lookup for %s failed: %s", key, why)
            return Lookup(None, why)
        return found

    async def _fill(
        self, cache: dict[str, tuple[float, T]], key: str, fetch: Callable[[], Awaitable[T]]
    ) -> Lookup[T]:
        """One lookup to its end, its answer cached for everyone; a failure, and why."""
        started = time.monotonic()
        try:
            value = await asyncio.wait_for(_waiting_out_rate_limits(fetch), LOOKUP_LIMIT)
        except _LOOKUP_ERRORS as exc:
            why = lookup_failure(exc)
            logger.warning("Slack lookup for %s failed: %s", key, why)
            return Lookup(None, why)
        finally:
            self._running.pop(key, None)
        cache[key] = (started, value)
        return Lookup(value)


@dataclass(frozen=True)
class Lookup(Generic[T]):
    """One lookup's answer, or why there is none (``failed``)."""

    value: T | None
    failed: str = ""


async def _waiting_out_rate_limits(fetch: Callable[[], Awaitable[T]]) -> T:
    """``fetch``, called again after each ``ratelimited`` answer's Retry-After (the client
    retries a few times itself; a big roster can outlast that), until ``LOOKUP_LIMIT``."""
    while True:
        try:
            return await fetch()
        except SlackApiError as exc:
            if exc.response.status_code != 429:
                raise
            said = header_retry_after(exc.response.headers)
            await asyncio.sleep(UNSAID_RETRY_AFTER if said is None else said)


def lookup_failure(exc: BaseException) -> str:
    """Why a Slack lookup failed, in words for a log line and a refusal (a timeout's own
    message is empty)."""
    if isinstance(exc, TimeoutError):
        return f"Slack did not answer within {LOOKUP_LIMIT:g} s"
    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error') or exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _numberless(policy: Policy, rosters: Iterable[frozenset[str]]) -> set[str]:
    """Linked contacts without a number, and roster members not linked to a numbered
    contact: the people a profile phone could number."""
    numbered = {user for name, user in policy.contact_slack.items() if name in policy.contacts}
    wanted = {user for name, user in policy.contact_slack.items() if name not in policy.contacts}
    for roster in rosters:
        wanted.update(roster - numbered)
    return wanted
