"""The ``escalations`` section: named ladders that a channel's pages climb until acked.

    escalations:
      db:
        tiers:
          - page: db-oncall      # a group, contact or number, or a list of them
            wait: 5m             # no ack within this: the next tier is texted
          - page: [carol]
        repeat: 1                # climb the ladder once more if still unacked
        acked_sms: "Acked by {name} at {time} - no action needed"   # "" turns it off

A mapping with ``tiers`` (rather than a bare list) keeps ``repeat`` and ``acked_sms`` next
to the ladder they belong to.
"""

from __future__ import annotations

import string
from datetime import timedelta

from yaml.nodes import Node

from bot.config.checker import Checker
from bot.config.durations import parse_interval
from bot.config.recipients import Names, UnknownName, read_number_or_name
from bot.config.yaml_nodes import join, suggest
from bot.core.escalation import ACKED_SMS_FIELDS, DEFAULT_ACKED_SMS, Escalation, Tier

ESCALATION_KEYS: tuple[str, ...] = ("tiers", "repeat", "acked_sms")
TIER_KEYS: tuple[str, ...] = ("page", "wait")


def read_escalations(
    node: Node, checker: Checker, names: Names
) -> tuple[dict[str, Escalation], list[str]]:
    """Every usable ladder by name, and every name declared (so that a channel naming a
    ladder with a problem is not also told the ladder does not exist)."""
    ladders: dict[str, Escalation] = {}
    entries = checker.mapping(node, "escalations") or []
    for name, key_node, value_node in entries:
        key = join("escalations", name)
        if not checker.name(key_node, key, "escalation"):
            continue
        ladder = _read_escalation(value_node, key, checker, names)
        if ladder is not None:
            ladders[name] = ladder
    return ladders, [name for name, _, _ in entries]


def check_escalation_name(
    name: str, at: Node, key: str, checker: Checker, known: list[str]
) -> bool:
    """Whether a channel's ``escalation`` names a ladder; reported (did you mean) when not."""
    if name in known:
        return True
    checker.report(at, key, f"unknown escalation {name!r} {suggest(name, known, 'escalations')}")
    return False


def _read_escalation(node: Node, key: str, checker: Checker, names: Names) -> Escalation | None:
    fields = checker.fields(node, key, ESCALATION_KEYS)
    if fields is None:
        return None
    if "tiers" not in fields:
        checker.report(node, f"{key}.tiers", "missing (the list of tiers to page in turn)")
        return None
    tiers = _read_tiers(fields["tiers"], f"{key}.tiers", checker, names)
    repeat = 0
    if "repeat" in fields:
        repeat = checker.integer(fields["repeat"], f"{key}.repeat", minimum=0) or 0
    acked_sms = DEFAULT_ACKED_SMS
    if "acked_sms" in fields:
        acked_sms = _read_acked_sms(fields["acked_sms"], f"{key}.acked_sms", checker)
    return Escalation(tiers=tiers, repeat=repeat, acked_sms=acked_sms) if tiers else None


def _read_tiers(node: Node, key: str, checker: Checker, names: Names) -> tuple[Tier, ...]:
    items = checker.sequence(node, key)
    if items is None:
        return ()
    if not items:
        checker.report(node, key, "must list at least one tier")
    tiers: list[Tier] = []
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]"
        fields = checker.fields(item, item_key, TIER_KEYS)
        if fields is None:
            continue
        if "page" not in fields:
            checker.report(item, f"{item_key}.page", "missing (who this tier texts)")
            continue
        page = _read_targets(fields["page"], f"{item_key}.page", checker, names)
        wait = None
        if "wait" in fields:
            wait = _read_wait(fields["wait"], f"{item_key}.wait", checker)
        elif index < len(items) - 1:
            checker.report(item, f"{item_key}.wait", "missing (how long before the next tier)")
        if page:
            tiers.append(Tier(page=page, wait=wait))
    return tuple(tiers)


def _read_targets(node: Node, key: str, checker: Checker, names: Names) -> tuple[str, ...]:
    """A group, contact or number, or a list of them; unknown names are reported."""
    items = checker.sequence(node, key) if not _is_scalar(node) else [node]
    targets: list[str] = []
    known = names.group_names + names.contact_names
    for index, item in enumerate(items or []):
        item_key = key if _is_scalar(node) else f"{key}[{index}]"
        target = checker.string(item, item_key, "a group, contact or number")
        if target is None:
            continue
        if target in known:
            targets.append(target)
            continue
        unknown = UnknownName("group or contact", "not a group, a contact or a number", known)
        number = read_number_or_name(target, item, item_key, checker, names.region, unknown)
        if number is not None and checker.deliverable(number, item, item_key) is not None:
            targets.append(number)
    if items == []:
        checker.report(node, key, "must name at least one group, contact or number")
    return tuple(targets)


def _is_scalar(node: Node) -> bool:
    return not isinstance(node.value, list)


def _read_wait(node: Node, key: str, checker: Checker) -> timedelta | None:
    """Like any duration; fractions of a second are allowed (demos and tests)."""
    text = checker.string(node, key, "a duration such as 5m")
    if text is None:
        return None
    try:
        return parse_interval(text)
    except ValueError as exc:
        checker.report(node, key, str(exc))
        return None


def _read_acked_sms(node: Node, key: str, checker: Checker) -> str:
    """The template, whose only fields are {name} and {time}; "" turns the SMS off."""
    text = checker.string(node, key, 'a text such as "Acked by {name} at {time}"')
    if text is None:
        return DEFAULT_ACKED_SMS
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        checker.report(node, key, f"not a valid template: {exc}")
        return DEFAULT_ACKED_SMS
    for field in fields:
        if field not in ACKED_SMS_FIELDS:
            hint = suggest(field, ACKED_SMS_FIELDS, "fields")
            checker.report(node, key, f"unknown field {{{field}}} {hint}")
    return text
