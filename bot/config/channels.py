"""The ``channels`` section: whom "page" reaches in a Slack channel, and which messages there
page on their own (``auto_page``)."""

from __future__ import annotations

import re
from datetime import timedelta

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information
from yaml.nodes import Node

from bot.config.checker import Checker
from bot.config.escalations import check_escalation_name
from bot.config.recipients import Names
from bot.config.yaml_nodes import join, suggest
from bot.core.alerts import linear_pattern
from bot.core.model import AutoPage, ChannelRule

CHANNEL_KEYS: tuple[str, ...] = ("page", "auto_page", "escalation")
AUTO_PAGE_KEYS: tuple[str, ...] = ("match", "dedupe_window")
DEFAULT_DEDUPE_WINDOW = timedelta(minutes=10)


def read_channels(
    node: Node, checker: Checker, names: Names, escalations: list[str]
) -> dict[str, ChannelRule]:
    """The paging rules, by Slack channel ID; ``escalations`` are the ladders' names."""
    channels: dict[str, ChannelRule] = {}
    for channel_id, key_node, value_node in checker.mapping(node, "channels") or []:
        key = join("channels", channel_id)
        if not checker.is_channel_id(channel_id, key_node, key):
            continue
        entries = checker.mapping(value_node, key, CHANNEL_KEYS)
        if entries is None:
            continue
        fields = {name: value for name, _, value in entries}
        keys = {name: name_node for name, name_node, _ in entries}
        page = None
        if "page" in fields:
            page = _read_page(fields["page"], f"{key}.page", checker, names)
        auto_page = None
        if "auto_page" in fields:
            auto_page = _read_auto_page(fields["auto_page"], f"{key}.auto_page", checker)
            if "page" not in fields:
                checker.report(
                    keys["auto_page"],
                    f"{key}.auto_page",
                    "needs 'page' in this channel: the group or contact to page",
                )
        escalation = None
        if "escalation" in fields:
            escalation = _read_escalation(
                fields["escalation"], f"{key}.escalation", checker, escalations
            )
        channels[channel_id] = ChannelRule(page=page, auto_page=auto_page, escalation=escalation)
    return channels


def _read_page(node: Node, key: str, checker: Checker, names: Names) -> str | None:
    """``channels.<id>.page``: the group or contact that paging in the channel reaches."""
    page = checker.string(node, key, "a group or contact name")
    known = names.group_names + names.contact_names
    if page is not None and page not in known:
        checker.report(
            node,
            key,
            f"{page!r} is not a group or a contact {suggest(page, known, 'groups and contacts')}",
        )
    return page


def _read_escalation(node: Node, key: str, checker: Checker, known: list[str]) -> str | None:
    """``channels.<id>.escalation``: the ladder that pages in this channel climb."""
    name = checker.string(node, key, "an escalation name")
    if name is None or not check_escalation_name(name, node, key, checker, known):
        return None
    return name


def _read_pattern(pattern: str, node: Node, key: str, checker: Checker) -> re.Pattern[str] | None:
    """``auto_page.match``, which must be valid Python syntax and also run under RE2: alerts
    are matched by RE2 so that no pattern can stall the bridge (see ``linear_pattern``)."""
    try:
        match = re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        checker.report(node, key, f"invalid regular expression: {exc}")
        return None
    try:
        linear_pattern(pattern)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "unsupported"
        reason = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        checker.report(
            node,
            key,
            f"this regular expression cannot be matched in linear time ({reason}): "
            "lookahead, lookbehind and backreferences are not supported",
        )
        return None
    return match


def _read_auto_page(node: Node, key: str, checker: Checker) -> AutoPage | None:
    """``channels.<id>.auto_page``; None when it is unusable (and so reported)."""
    fields = checker.fields(node, key, AUTO_PAGE_KEYS)
    if fields is None:
        return None
    match = None
    if "match" not in fields:
        checker.report(node, f"{key}.match", "missing (a regular expression to page on)")
    else:
        pattern = checker.string(fields["match"], f"{key}.match", "a regular expression")
        if pattern is not None:
            match = _read_pattern(pattern, fields["match"], f"{key}.match", checker)
    dedupe_window = DEFAULT_DEDUPE_WINDOW
    if "dedupe_window" in fields:
        dedupe_window = (
            checker.duration(fields["dedupe_window"], f"{key}.dedupe_window") or dedupe_window
        )
    return AutoPage(match=match, dedupe_window=dedupe_window) if match is not None else None
