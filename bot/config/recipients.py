"""The sections that declare who can be texted, and from where: ``defaults``,
``from_numbers``, ``contacts`` and ``groups``.

They are read first, into ``Names``, so that later sections can check every name they use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import phonenumbers
from yaml.nodes import MappingNode, Node

from bot.config.checker import USER_GROUP_ID_RE, USER_ID_RE, Checker
from bot.config.yaml_nodes import close_name, is_null, join, line_of, suggest
from bot.core.model import Defaults, Recipient
from bot.core.phone import parse_number
from bot.errors import InvalidNumber

DEFAULTS_KEYS: tuple[str, ...] = (
    "region",
    "from",
    "max_segments",
    "mask_numbers",
    "slack_profile_numbers",
)
CONTACT_KEYS: tuple[str, ...] = ("number", "slack")
SLACK_GROUP_KEYS: tuple[str, ...] = ("slack_group",)
SLACK_USER = "a Slack user ID (like U0123ABCD)"
SLACK_GROUP = "a Slack user group ID (like S0123ABCD)"
DEFAULT_FROM_NAME = "main"
# Text that is plainly meant as a phone number, so a parse failure says "invalid number"
# rather than "unknown contact".
_NUMBERISH_RE = re.compile(r"\+?[0-9][0-9 ().-]*")
# Reads a number value: (value node, dotted key, default region) -> E.164, or None (reported).
NumberReader = Callable[[Node, str, str], str | None]


@dataclass(frozen=True)
class UnknownName:
    """How text that is neither a declared name nor a number is reported: "unknown <what>
    'text' (<is_not>)", plus "did you mean" the closest of ``known`` (the names that fit
    there), since a misspelt name is the likeliest cause."""

    what: str
    is_not: str
    known: Sequence[str]


@dataclass
class Names:
    """What the file declares, so later sections can check the names they refer to."""

    region: str = Defaults.region
    from_names: list[str] = field(default_factory=list)
    from_numbers: dict[str, str] = field(default_factory=dict)
    contact_names: list[str] = field(default_factory=list)
    contacts: dict[str, str] = field(default_factory=dict)
    group_names: list[str] = field(default_factory=list)
    contact_slack: dict[str, str] = field(default_factory=dict)
    slack_groups: dict[str, str] = field(default_factory=dict)

    def contact_for(self, number: str) -> str | None:
        """The contact with this number, so a number in a group still shows its name."""
        for name, contact_number in self.contacts.items():
            if contact_number == number:
                return name
        return None


def read_names(
    defaults: Node, from_numbers: Node | None, contacts: Node, top: Node, checker: Checker
) -> tuple[Names, dict[str, Node]]:
    """The region, from_numbers and contacts, which every later section refers to.

    Also returns the ``defaults`` entries: their ``from`` can only be checked once the
    from_numbers are known, so ``read_defaults`` reads them afterwards.
    """
    names = Names()
    defaults_nodes = checker.fields(defaults, "defaults", DEFAULTS_KEYS) or {}
    if "region" in defaults_nodes:
        names.region = _read_region(defaults_nodes["region"], checker)
    _read_from_numbers(from_numbers, top, checker, names)
    names.contact_names, names.contacts = _read_numbers(
        contacts, "contacts", "contact", checker, names.region, _contact_reader(checker, names)
    )
    return names, defaults_nodes


def _contact_reader(checker: Checker, names: Names) -> NumberReader:
    """Reads a contact: a number, or ``{number: …, slack: U…}`` linking it to a Slack user
    (recorded in ``names.contact_slack``), where the number may be left out."""
    linked: dict[str, str] = {}

    def read(node: Node, key: str, region: str) -> str | None:
        if not isinstance(node, MappingNode):
            return checker.destination(node, key, region)
        fields = checker.fields(node, key, CONTACT_KEYS) or {}
        name = key.removeprefix("contacts.")
        if "slack" in fields:
            user = checker.slack_id(fields["slack"], f"{key}.slack", USER_ID_RE, SLACK_USER)
            if user is not None and user in linked:
                checker.report(
                    fields["slack"], f"{key}.slack", f"{user} is also contact {linked[user]!r}"
                )
            elif user is not None:
                linked[user] = name
                names.contact_slack[name] = user
        if "number" in fields:
            return checker.destination(fields["number"], f"{key}.number", region)
        if "slack" not in fields:
            checker.report(node, key, "needs a number, a slack user ID, or both")
        return None

    return read


def _read_from_numbers(node: Node | None, top: Node, checker: Checker, names: Names) -> None:
    """The required ``from_numbers`` section: without a number there is nothing to send from."""
    if node is None:
        checker.report(line_of(top), "from_numbers", "missing (name: number of each SMS number)")
        return
    names.from_names, names.from_numbers = _read_numbers(
        node, "from_numbers", "from_number", checker, names.region, checker.number
    )
    if not names.from_names and (isinstance(node, MappingNode) or is_null(node)):
        checker.report(node, "from_numbers", "must list at least one SMS-enabled number")


def _read_region(node: Node, checker: Checker) -> str:
    """``defaults.region``: the country of numbers written without their +country code."""
    text = checker.string(node, "defaults.region", "a region code such as GB")
    if text is None:
        return Defaults.region
    region = text.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        checker.report(
            node,
            "defaults.region",
            f"unknown region {text!r} (an ISO 3166 code such as GB, ES or CA)",
        )
        return Defaults.region
    return region


def _read_numbers(
    node: Node, section: str, what: str, checker: Checker, region: str, read: NumberReader
) -> tuple[list[str], dict[str, str]]:
    """A ``name: number`` section: every declared name, and the numbers ``read`` accepts.

    A name whose number is invalid is still declared, so using it elsewhere is not reported
    a second time as an unknown name. A number under two names is a warning, not an error:
    it works, but one of them was most likely meant to be another number (a copy-paste
    slip), and a number is only ever shown under its first name.
    """
    declared: list[str] = []
    numbers: dict[str, str] = {}
    first: dict[str, tuple[str, int]] = {}
    for name, key_node, value_node in checker.mapping(node, section) or []:
        key = join(section, name)
        if not checker.name(key_node, key, what):
            continue
        declared.append(name)
        number = read(value_node, key, region)
        if number is None:
            continue
        numbers[name] = number
        if number in first:
            other, other_line = first[number]
            checker.warn(
                key_node,
                key,
                f"same number as {join(section, other)} (line {other_line}): {number}; "
                "one of them is probably meant to be another number",
            )
        else:
            first[number] = (name, line_of(key_node))
    return declared, numbers


def read_defaults(nodes: dict[str, Node], checker: Checker, names: Names) -> Defaults:
    """The ``defaults`` section; ``from`` falls back to "main", else the first from_number."""
    if "from" in nodes:
        from_name = checker.string(nodes["from"], "defaults.from", "a from_numbers name")
        if from_name is not None and from_name not in names.from_names:
            checker.report(
                nodes["from"],
                "defaults.from",
                f"{from_name!r} is not a from_number "
                f"{suggest(from_name, names.from_names, 'from_numbers')}",
            )
    elif DEFAULT_FROM_NAME in names.from_names or not names.from_names:
        from_name = DEFAULT_FROM_NAME
    else:
        from_name = names.from_names[0]
    max_segments = Defaults.max_segments
    if "max_segments" in nodes:
        max_segments = (
            checker.integer(nodes["max_segments"], "defaults.max_segments") or max_segments
        )
    flags = {
        flag: bool(checker.boolean(nodes[flag], f"defaults.{flag}"))
        for flag in ("mask_numbers", "slack_profile_numbers")
        if flag in nodes
    }
    return Defaults(
        region=names.region,
        from_name=from_name or DEFAULT_FROM_NAME,
        max_segments=max_segments,
        mask_numbers=flags.get("mask_numbers", Defaults.mask_numbers),
        slack_profile_numbers=flags.get("slack_profile_numbers", Defaults.slack_profile_numbers),
    )


def read_groups(node: Node, checker: Checker, names: Names) -> dict[str, tuple[Recipient, ...]]:
    """The ``groups`` section, each resolved to its distinct members."""
    entries = checker.mapping(node, "groups") or []
    names.group_names = [name for name, _, _ in entries]
    groups: dict[str, tuple[Recipient, ...]] = {}
    for name, key_node, value_node in entries:
        key = join("groups", name)
        if not checker.name(key_node, key, "group"):
            continue
        if name in names.contact_names:
            checker.report(
                key_node, key, f"{name!r} is both a contact and a group; rename one of them"
            )
        if isinstance(value_node, MappingNode):
            _read_slack_group(value_node, key, checker, names)
            groups[name] = ()
            continue
        members = checker.sequence(value_node, key)
        if members is None:
            continue
        if not members:
            checker.report(value_node, key, "must list at least one contact or number")
        recipients: dict[str, Recipient] = {}
        for index, member_node in enumerate(members):
            recipient = _read_member(member_node, f"{key}[{index}]", checker, names)
            if recipient is not None and recipient.number not in recipients:
                recipients[recipient.number] = recipient
        groups[name] = tuple(recipients.values())
    return groups


def _read_slack_group(node: MappingNode, key: str, checker: Checker, names: Names) -> None:
    """``{slack_group: S…}``: a roster kept in Slack, read when a text is sent."""
    fields = checker.fields(node, key, SLACK_GROUP_KEYS) or {}
    if "slack_group" not in fields:
        checker.report(node, key, "missing slack_group (or write the group as a list)")
        return
    where = f"{key}.slack_group"
    group = checker.slack_id(fields["slack_group"], where, USER_GROUP_ID_RE, SLACK_GROUP)
    if group is not None:
        names.slack_groups[key.removeprefix("groups.")] = group


def _read_member(node: Node, key: str, checker: Checker, names: Names) -> Recipient | None:
    """A group member: a contact name or a phone number (never another group)."""
    text = checker.string(node, key, "a contact name or a phone number")
    if text is None:
        return None
    if text in names.contact_names:
        number = names.contacts.get(text)  # None: its number was invalid or refused (reported)
        if number is None and text in names.contact_slack:
            checker.report(
                node,
                key,
                f"contact {text!r} has no number in the file; a listed group needs numbers "
                "(a slack_group group reads its members' numbers when it is texted)",
            )
        return Recipient(number, text) if number else None
    if text in names.group_names:
        checker.report(node, key, f"{text!r} is a group; a group lists contacts and numbers only")
        return None
    number = read_number_or_name(
        text,
        node,
        key,
        checker,
        names.region,
        UnknownName("contact", "not a contact, and not a phone number", names.contact_names),
    )
    if number is None or checker.deliverable(number, node, key) is None:
        return None
    return Recipient(number, names.contact_for(number))


def read_number_or_name(
    text: str,
    node: Node,
    key: str,
    checker: Checker,
    region: str,
    unknown: UnknownName,
) -> str | None:
    """``text`` as an E.164 number, for text that names nothing the file declares.

    When it does not parse, the report says why the number is invalid if it looks like one,
    and otherwise reports it as ``unknown`` (most likely a misspelt name).
    """
    try:
        return parse_number(text, region)
    except InvalidNumber as exc:
        if _NUMBERISH_RE.fullmatch(text.strip()):
            checker.report(node, key, str(exc))
            return None
    close = close_name(text, unknown.known)
    hint = f"; did you mean {close!r}?" if close is not None else ""
    checker.report(node, key, f"unknown {unknown.what} {text!r} ({unknown.is_not}{hint})")
    return None
