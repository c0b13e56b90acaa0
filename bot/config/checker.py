"""Typed reads of policy YAML nodes that record located problems instead of raising.

Reading goes on past a problem, so one run of ``check-config`` lists every mistake in the
file, each as ``"file:line: dotted.key: why"``, in the order they appear in the file.
Warnings have the same form: likely mistakes that still leave a policy that works.
"""

from __future__ import annotations

import re
from datetime import timedelta

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.config.durations import parse_duration
from bot.config.yaml_nodes import (
    BOOL_TAG,
    INT_TAG,
    MERGE_TAG,
    NULL_TAG,
    YAML_TAG,
    is_null,
    join,
    kind,
    line_of,
    suggest,
)
from bot.core.phone import destination_refusal, parse_number
from bot.errors import InvalidNumber

# Names are typed in comma lists ("/sms alice,bob hi"), so no commas or spaces.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,}")
USER_GROUP_ID_RE = re.compile(r"S[A-Z0-9]{2,}")
CHANNEL_ID_RE = re.compile(r"[CGD][A-Z0-9]{2,}")
_TOP = "(top level)"


class Checker:
    """Reads nodes as the types the policy needs; what cannot be read is reported."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[tuple[int, int, str]] = []
        self.warnings: list[tuple[int, int, str]] = []
        self.constructor = SafeConstructor()

    def _located(self, at: Node | int, key: str, why: str) -> tuple[int, int, str]:
        """``why`` as "file:line: key: why", with the line and column it sorts by."""
        if isinstance(at, int):
            line, column = at, 0
        else:
            line, column = line_of(at), at.start_mark.column
        return line, column, f"{self.source}:{line}: {key or _TOP}: {why}"

    def report(self, at: Node | int, key: str, why: str) -> None:
        """Record a problem at a node, or at a line when the node is missing altogether."""
        self.problems.append(self._located(at, key, why))

    def warn(self, at: Node | int, key: str, why: str) -> None:
        """Record a likely mistake that does not stop the policy from loading."""
        self.warnings.append(self._located(at, key, why))

    def sorted_problems(self) -> list[str]:
        """Problems in file order, so they read top to bottom like the file."""
        return _in_file_order(self.problems)

    def sorted_warnings(self) -> list[str]:
        """Warnings in file order, like the problems."""
        return _in_file_order(self.warnings)

    def mapping(
        self, node: Node, key: str, known: tuple[str, ...] | None = None
    ) -> list[tuple[str, Node, Node]] | None:
        """The (name, key node, value node) entries of a mapping; an empty value is ``[]``.

        Duplicate keys (which YAML would silently overwrite) and keys not in ``known`` are
        reported and left out. Returns None when the node is not a mapping at all.
        """
        if is_null(node):
            return []
        if not isinstance(node, MappingNode):
            self.report(node, key, f"expected a mapping (name: value lines), got {kind(node)}")
            return None
        entries: list[tuple[str, Node, Node]] = []
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.report(key_node, key, f"a key must be a plain name, not {kind(key_node)}")
                continue
            if key_node.tag == MERGE_TAG:
                self.report(key_node, join(key, "<<"), "YAML merge keys are not supported")
                continue
            name = str(key_node.value)
            child = join(key, name)
            if name in first_line:
                self.report(key_node, child, f"duplicate key (first at line {first_line[name]})")
                continue
            first_line[name] = line_of(key_node)
            if known is not None and name not in known:
                hint = suggest(name, known, "known keys")
                self.report(key_node, child, f"unknown key {name!r} {hint}")
                continue
            entries.append((name, key_node, value_node))
        return entries

    def fields(self, node: Node, key: str, known: tuple[str, ...]) -> dict[str, Node] | None:
        """A mapping of known keys as ``{name: value node}``; None (reported) if no mapping."""
        entries = self.mapping(node, key, known)
        if entries is None:
            return None
        return {name: value for name, _, value in entries}

    def sequence(self, node: Node, key: str) -> list[Node] | None:
        """The items of a list; an empty value is ``[]``; None (reported) if not a list."""
        if is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.report(node, key, f"expected a list, got {kind(node)}")
            return None
        return list(node.value)

    def strings(
        self, node: Node, key: str, what: str, empty: str | None = None
    ) -> list[tuple[str, Node, str]] | None:
        """The string items of a list as (text, node, key of the item); items that are no
        string are reported and left out. None (reported) if not a list; ``empty`` is
        reported for an empty one."""
        items = self.sequence(node, key)
        if items is None:
            return None
        if empty is not None and not items:
            self.report(node, key, empty)
        found: list[tuple[str, Node, str]] = []
        for index, item in enumerate(items):
            item_key = f"{key}[{index}]"
            text = self.string(item, item_key, what)
            if text is not None:
                found.append((text, item, item_key))
        return found

    def string(self, node: Node, key: str, what: str = "a string") -> str | None:
        """The text of a scalar as written (YAML's int/bool guesses do not apply to names)."""
        if not isinstance(node, ScalarNode) or node.tag == NULL_TAG:
            self.report(node, key, f"expected {what}, got {kind(node)}")
            return None
        if not node.tag.startswith(YAML_TAG):
            self.report(node, key, f"YAML tag {node.tag!r} is not supported")
            return None
        return str(node.value)

    def int_value(self, node: Node) -> int | None:
        """The value of a YAML integer, or None for anything else (nothing is reported)."""
        if not (isinstance(node, ScalarNode) and node.tag == INT_TAG):
            return None
        try:
            value: object = self.constructor.construct_yaml_int(node)
        except (ValueError, KeyError, IndexError, TypeError, yaml.YAMLError):
            return None  # an explicit !!int tag on text that is no number
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def integer(self, node: Node, key: str, minimum: int = 1) -> int | None:
        """A whole number >= ``minimum``; booleans and quoted numbers are refused."""
        value = self.int_value(node)
        if value is not None and value >= minimum:
            return value
        self.report(node, key, f"expected a whole number of at least {minimum}, got {kind(node)}")
        return None

    def boolean(self, node: Node, key: str) -> bool | None:
        """true or false, nothing else ("yes" and "on" count, as in YAML 1.1)."""
        if isinstance(node, ScalarNode) and node.tag == BOOL_TAG:
            try:
                return bool(self.constructor.construct_yaml_bool(node))
            except (KeyError, ValueError, yaml.YAMLError):
                pass
        self.report(node, key, f"expected true or false, got {kind(node)}")
        return None

    def duration(self, node: Node, key: str) -> timedelta | None:
        """A duration such as "10m"; zero, negative and malformed ones are reported."""
        text = self.string(node, key, "a duration such as 10m")
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.report(node, key, str(exc))
            return None

    def name(self, key_node: Node, key: str, what: str) -> bool:
        """Whether a declared name can be typed in a comma list; reports it when not."""
        if NAME_RE.fullmatch(str(key_node.value)):
            return True
        self.report(
            key_node,
            key,
            f"{str(key_node.value)!r} is not a valid {what} name (letters, digits, '_', '.' "
            "and '-', starting with a letter or digit; no spaces or commas)",
        )
        return False

    def user_ids(self, node: Node, key: str, required: bool) -> list[tuple[str, Node]]:
        """Slack user IDs of a list, with their nodes; reports malformed ones."""
        empty = "must list at least one Slack user ID (like U0123ABCD)" if required else None
        users: list[tuple[str, Node]] = []
        for user, item, item_key in self.strings(node, key, "a Slack user ID", empty) or []:
            if not (USER_ID_RE.fullmatch(user) or USER_GROUP_ID_RE.fullmatch(user)):
                self.report(
                    item,
                    item_key,
                    f"{user!r} is not a Slack user ID (like U0123ABCD) "
                    "or user group ID (like S0123ABCD)",
                )
                continue
            users.append((user, item))
        return users

    def slack_id(self, node: Node, key: str, pattern: re.Pattern[str], what: str) -> str | None:
        """A Slack id of one kind (``what`` names it with an example); None (reported) if the
        value is not one, since a wrong id would only show up as nobody being found."""
        text = self.string(node, key, what)
        if text is None:
            return None
        if not pattern.fullmatch(text):
            self.report(node, key, f"{text!r} is not {what}")
            return None
        return text

    def is_channel_id(self, text: str, at: Node, key: str) -> bool:
        """Whether ``text`` is a Slack channel ID; reports it at ``at`` when not."""
        if CHANNEL_ID_RE.fullmatch(text):
            return True
        self.report(at, key, f"{text!r} is not a Slack channel ID (like C0123ABCD)")
        return False

    def channel_id(self, node: Node, key: str) -> str | None:
        """A Slack channel ID value (like C0123ABCD); None (reported) if it is not one."""
        channel = self.string(node, key, "a Slack channel ID")
        if channel is None or not self.is_channel_id(channel, node, key):
            return None
        return channel

    def number(self, node: Node, key: str, region: str) -> str | None:
        """A phone number as E.164, parsed in the default region; reports invalid ones."""
        text = self.string(node, key, "a phone number")
        if text is None:
            return None
        try:
            return parse_number(text, region)
        except InvalidNumber as exc:
            self.report(node, key, str(exc))
            return None

    def destination(self, node: Node, key: str, region: str) -> str | None:
        """A number that sends will go to: as ``number``, and also reported when 2Chat can
        never deliver to it, which would otherwise only show up as a refused send."""
        number = self.number(node, key, region)
        return None if number is None else self.deliverable(number, node, key)

    def deliverable(self, number: str, at: Node, key: str) -> str | None:
        """``number`` if 2Chat can text it; otherwise None, reported with the reason."""
        refusal = destination_refusal(number)
        if refusal is None:
            return number
        self.report(at, key, f"{number} can never be texted: {refusal}")
        return None


def _in_file_order(located: list[tuple[int, int, str]]) -> list[str]:
    return [text for _, _, text in sorted(located, key=lambda item: item[:2])]
