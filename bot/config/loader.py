"""Load the policy file (SPEC §2) into a validated ``Policy``, reporting every problem at once.

The YAML is composed, not constructed, so every node keeps its line number: each problem
reads ``"file:line: dotted.key: why"``, which is what someone fixing the file needs. Only
the scalars whose type matters (ints, booleans) are constructed; names, numbers, durations
and regexes are taken as the text written, so ``+447700900123`` unquoted stays a number.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from datetime import timedelta

import phonenumbers
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.core.model import (
    START_WORDS,
    STOP_WORDS,
    WILDCARD,
    Approvals,
    AutoPage,
    ChannelRule,
    Defaults,
    Limits,
    Policy,
    Recipient,
    Replies,
    SenderRule,
    reply_keyword,
)
from bot.core.phone import parse_number
from bot.errors import ConfigError, InvalidNumber

# The keys each section accepts. To extend the file format, add the key here and read it in
# the matching ``_read_*`` function; anything not listed is reported as an unknown key.
TOP_KEYS: tuple[str, ...] = (
    "version",
    "defaults",
    "from_numbers",
    "contacts",
    "groups",
    "senders",
    "approvals",
    "channels",
    "limits",
    "replies",
)
DEFAULTS_KEYS: tuple[str, ...] = ("region", "from", "max_segments", "mask_numbers")
SENDER_KEYS: tuple[str, ...] = ("users", "to", "from", "approval")
APPROVALS_KEYS: tuple[str, ...] = ("approvers", "channel", "expire_after", "allow_self_approval")
CHANNEL_KEYS: tuple[str, ...] = ("page", "auto_page")
AUTO_PAGE_KEYS: tuple[str, ...] = ("match", "dedupe_window")
LIMITS_KEYS: tuple[str, ...] = (
    "per_sender_per_hour",
    "per_recipient_per_hour",
    "requests_per_minute",
)
REPLIES_KEYS: tuple[str, ...] = (
    "poll_interval",
    "window",
    "ack_words",
    "unknown_numbers_channel",
)

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
APPROVAL_VALUES: dict[str, bool] = {"required": True, "none": False}
DEFAULT_FROM_NAME = "main"
DEFAULT_DEDUPE_WINDOW = timedelta(minutes=10)

# Names are typed in comma lists ("/sms alice,bob hi"), so no commas or spaces.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,}")
CHANNEL_ID_RE = re.compile(r"[CGD][A-Z0-9]{2,}")
NUMBER_PATTERN_RE = re.compile(r"\+[0-9]+\*")
# Text that is plainly meant as a phone number, so a parse failure says "invalid number"
# rather than "unknown contact".
_NUMBERISH_RE = re.compile(r"\+?[0-9][0-9 ().-]*")

_DURATION_RE = re.compile(r"(?:[0-9]+[smhd])+")
_DURATION_PART_RE = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_HINT = "use e.g. 30s, 10m, 2h, 1d or 1h30m"
# A poll interval may be a fraction of a second ("0.5s"), which tests and demos use.
_FRACTIONAL_SECONDS_RE = re.compile(r"([0-9]+\.[0-9]+)s?")

_YAML_TAG = "tag:yaml.org,2002:"
_NULL_TAG = _YAML_TAG + "null"
_BOOL_TAG = _YAML_TAG + "bool"
_INT_TAG = _YAML_TAG + "int"
_FLOAT_TAG = _YAML_TAG + "float"
_STR_TAG = _YAML_TAG + "str"
_MERGE_TAG = _YAML_TAG + "merge"
_TOP = "(top level)"


def parse_duration(text: str | int) -> timedelta:
    """Parse "30s", "10m", "2h", "1d", "1h30m" or a bare number of seconds.

    Raises ``ValueError`` for zero, negative or malformed durations, so a typo never turns
    into "expire immediately" or "never expire".
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})")
    if isinstance(text, int):
        seconds = text
    else:
        value = text.strip()
        if value.startswith("-"):
            raise ValueError(f"{text!r} is negative: a duration must be longer than zero")
        if not (re.fullmatch(r"[0-9]+", value) or _DURATION_RE.fullmatch(value)):
            raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})")
        if len(value) > 30:  # int() refuses huge digit strings; no real duration is this long
            raise ValueError(f"{_shorten(text)!r} is too long a duration")
        if value.isdigit():
            seconds = int(value)
        else:
            seconds = sum(
                int(amount) * _UNIT_SECONDS[unit]
                for amount, unit in _DURATION_PART_RE.findall(value)
            )
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{_shorten(str(text))!r} is too long a duration") from None


def format_duration(duration: timedelta) -> str:
    """The inverse of ``parse_duration`` (e.g. "1h30m"), for summaries people read."""
    seconds = int(duration.total_seconds())
    parts: list[str] = []
    for unit, size in _UNIT_SECONDS.items():
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate the policy file; raises ``ConfigError`` listing every problem."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError([f"{source}: cannot read the policy file: {why}"]) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([f"{source}:{line}: the policy file is not UTF-8 text"]) from exc
    return load_policy_text(text, source)


def load_policy_text(text: str, source: str = "<string>") -> Policy:
    """Validate policy YAML given as a string; ``source`` names it in every problem."""
    root = _compose(text, source)
    checker = _Checker(source)
    policy = _read_policy(root, checker)
    if checker.problems or policy is None:
        raise ConfigError(checker.sorted_problems())
    return policy


def _compose(text: str, source: str) -> Node | None:
    """YAML text to a node tree; any YAML failure becomes a located ``ConfigError``."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        why = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            why = f"{exc.problem} ({exc.context}{where})"
        raise ConfigError([f"{source}:{line}: YAML syntax error: {why}"]) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        char = exc.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        raise ConfigError(
            [f"{source}:{line}: YAML syntax error: special character {shown} is not allowed"]
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}:1: YAML syntax error: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError([f"{source}:1: YAML syntax error: nested too deeply"]) from exc


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(node: Node) -> str:
    """What a node is, in words, for "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG or node.value == "":
        return "an empty value"
    value = _shorten(str(node.value))
    if node.tag in (_INT_TAG, _FLOAT_TAG):
        return f"the number {value}"
    if node.tag == _BOOL_TAG:
        return f"the boolean {value}"
    return f"the string {value!r}"


def _suggest(name: str, known: Iterable[str], what: str) -> str:
    """ "(did you mean 'x'?)" when a close name exists, else the list of valid names."""
    choices = list(known)
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"(did you mean {close[0]!r}?)"
    if not choices:
        return f"(there are no {what})"
    return f"({what}: {', '.join(choices)})"


class _Checker:
    """Typed reads of YAML nodes that record located problems instead of raising."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[tuple[int, int, str]] = []
        self.constructor = SafeConstructor()

    def report(self, at: Node | int, key: str, why: str) -> None:
        if isinstance(at, int):
            line, column = at, 0
        else:
            line, column = at.start_mark.line + 1, at.start_mark.column
        self.problems.append((line, column, f"{self.source}:{line}: {key or _TOP}: {why}"))

    def sorted_problems(self) -> list[str]:
        """Problems in file order, so they read top to bottom like the file."""
        return [text for _, _, text in sorted(self.problems, key=lambda item: item[:2])]

    def mapping(
        self, node: Node, key: str, known: tuple[str, ...] | None = None
    ) -> list[tuple[str, Node, Node]] | None:
        """The (name, key node, value node) entries of a mapping; an empty value is ``[]``.

        Duplicate keys (which YAML would silently overwrite) and keys not in ``known`` are
        reported and left out. Returns None when the node is not a mapping at all.
        """
        if _is_null(node):
            return []
        if not isinstance(node, MappingNode):
            self.report(node, key, f"expected a mapping (name: value lines), got {_kind(node)}")
            return None
        entries: list[tuple[str, Node, Node]] = []
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.report(key_node, key, f"a key must be a plain name, not {_kind(key_node)}")
                continue
            if key_node.tag == _MERGE_TAG:
                self.report(key_node, _join(key, "<<"), "YAML merge keys are not supported")
                continue
            name = str(key_node.value)
            child = _join(key, name)
            line = key_node.start_mark.line + 1
            if name in first_line:
                self.report(key_node, child, f"duplicate key (first at line {first_line[name]})")
                continue
            first_line[name] = line
            if known is not None and name not in known:
                hint = _suggest(name, known, "known keys")
                self.report(key_node, child, f"unknown key {name!r} {hint}")
                continue
            entries.append((name, key_node, value_node))
        return entries

    def sequence(self, node: Node, key: str) -> list[Node] | None:
        """The items of a list; an empty value is ``[]``; None (reported) if not a list."""
        if _is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.report(node, key, f"expected a list, got {_kind(node)}")
            return None
        return list(node.value)

    def string(self, node: Node, key: str, what: str = "a string") -> str | None:
        """The text of a scalar as written (YAML's int/bool guesses do not apply to names)."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG:
            self.report(node, key, f"expected {what}, got {_kind(node)}")
            return None
        if not node.tag.startswith(_YAML_TAG):
            self.report(node, key, f"YAML tag {node.tag!r} is not supported")
            return None
        return str(node.value)

    def integer(self, node: Node, key: str, minimum: int = 1) -> int | None:
        """A whole number >= ``minimum``; booleans and quoted numbers are refused."""
        value: object = None
        if isinstance(node, ScalarNode) and node.tag == _INT_TAG:
            try:
                value = self.constructor.construct_yaml_int(node)
            except (ValueError, KeyError, IndexError, TypeError, yaml.YAMLError):
                value = None
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        self.report(node, key, f"expected a whole number of at least {minimum}, got {_kind(node)}")
        return None

    def boolean(self, node: Node, key: str) -> bool | None:
        """true or false, nothing else ("yes" and "on" count, as in YAML 1.1)."""
        if isinstance(node, ScalarNode) and node.tag == _BOOL_TAG:
            try:
                return bool(self.constructor.construct_yaml_bool(node))
            except (KeyError, ValueError, yaml.YAMLError):
                pass
        self.report(node, key, f"expected true or false, got {_kind(node)}")
        return None

    def duration(self, node: Node, key: str) -> timedelta | None:
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
        items = self.sequence(node, key)
        if items is None:
            return []
        if required and not items:
            self.report(node, key, "must list at least one Slack user ID (like U0123ABCD)")
        users: list[tuple[str, Node]] = []
        for index, item in enumerate(items):
            item_key = f"{key}[{index}]"
            user = self.string(item, item_key, "a Slack user ID")
            if user is None:
                continue
            if not USER_ID_RE.fullmatch(user):
                self.report(item, item_key, f"{user!r} is not a Slack user ID (like U0123ABCD)")
                continue
            users.append((user, item))
        return users

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


class _Names:
    """What the file declares, so later sections can check the names they refer to."""

    def __init__(self) -> None:
        self.region = Defaults.region
        self.from_names: list[str] = []
        self.from_numbers: dict[str, str] = {}
        self.contact_names: list[str] = []
        self.contacts: dict[str, str] = {}
        self.group_names: list[str] = []

    def contact_for(self, number: str) -> str | None:
        for name, contact_number in self.contacts.items():
            if contact_number == number:
                return name
        return None


def _read_policy(root: Node | None, checker: _Checker) -> Policy | None:
    if root is None or _is_null(root):
        checker.report(1, "", "the policy file is empty (it needs version and from_numbers)")
        return None
    entries = checker.mapping(root, "", TOP_KEYS)
    if entries is None:
        return None
    sections = {name: value for name, _, value in entries}
    top_line = root.start_mark.line + 1

    if "version" not in sections:
        checker.report(top_line, "version", f"missing (must be {SUPPORTED_VERSIONS[0]})")
    else:
        _read_version(sections["version"], checker)

    names = _Names()
    defaults_node = sections.get("defaults", _empty(root))
    defaults_entries = checker.mapping(defaults_node, "defaults", DEFAULTS_KEYS)
    defaults_nodes = {name: value for name, _, value in defaults_entries or []}
    if "region" in defaults_nodes:
        names.region = _read_region(defaults_nodes["region"], checker)

    if "from_numbers" not in sections:
        checker.report(top_line, "from_numbers", "missing (name: number of each SMS number)")
    else:
        node = sections["from_numbers"]
        _read_numbers(
            node,
            "from_numbers",
            "from_number",
            checker,
            names,
            names.from_numbers,
            names.from_names,
        )
        if not names.from_names and (isinstance(node, MappingNode) or _is_null(node)):
            checker.report(node, "from_numbers", "must list at least one SMS-enabled number")
    _read_numbers(
        sections.get("contacts", _empty(root)),
        "contacts",
        "contact",
        checker,
        names,
        names.contacts,
        names.contact_names,
    )
    defaults = _read_defaults(defaults_nodes, checker, names)
    groups = _read_groups(sections.get("groups", _empty(root)), checker, names)
    senders = _read_senders(sections.get("senders", _empty(root)), checker, names)
    approvals = _read_approvals(sections.get("approvals", _empty(root)), checker)
    _check_approvers(senders, approvals, checker)
    channels = _read_channels(sections.get("channels", _empty(root)), checker, names)
    limits = _read_limits(sections.get("limits", _empty(root)), checker)
    replies = _read_replies(sections.get("replies", _empty(root)), checker)
    if checker.problems or approvals is None:
        return None
    return Policy(
        defaults=defaults,
        from_numbers=dict(names.from_numbers),
        contacts=dict(names.contacts),
        groups=groups,
        senders=tuple(rule for rule, _ in senders),
        approvals=approvals,
        channels=channels,
        limits=limits,
        replies=replies,
        source=checker.source,
    )


def _empty(at: Node) -> Node:
    """A stand-in for an absent optional section: an empty value located at ``at``."""
    return ScalarNode(_NULL_TAG, "", at.start_mark, at.start_mark)


def _read_version(node: Node, checker: _Checker) -> None:
    value: object = None
    if isinstance(node, ScalarNode) and node.tag == _INT_TAG:
        try:
            value = checker.constructor.construct_yaml_int(node)
        except (ValueError, KeyError, IndexError, TypeError, yaml.YAMLError):
            value = None
    if isinstance(value, bool) or value not in SUPPORTED_VERSIONS:
        supported = " or ".join(str(version) for version in SUPPORTED_VERSIONS)
        checker.report(node, "version", f"must be {supported}, got {_kind(node)}")


def _read_region(node: Node, checker: _Checker) -> str:
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
    node: Node,
    section: str,
    what: str,
    checker: _Checker,
    names: _Names,
    numbers: dict[str, str],
    declared: list[str],
) -> None:
    """A ``name: number`` section: ``declared`` gets every name, ``numbers`` the valid ones."""
    for name, key_node, value_node in checker.mapping(node, section) or []:
        key = _join(section, name)
        if not checker.name(key_node, key, what):
            continue
        declared.append(name)
        number = checker.number(value_node, key, names.region)
        if number is not None:
            numbers[name] = number


def _read_defaults(nodes: dict[str, Node], checker: _Checker, names: _Names) -> Defaults:
    if "from" in nodes:
        from_name = checker.string(nodes["from"], "defaults.from", "a from_numbers name")
        if from_name is not None and from_name not in names.from_names:
            checker.report(
                nodes["from"],
                "defaults.from",
                f"{from_name!r} is not a from_number "
                f"{_suggest(from_name, names.from_names, 'from_numbers')}",
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
    mask_numbers = Defaults.mask_numbers
    if "mask_numbers" in nodes:
        mask_numbers = bool(checker.boolean(nodes["mask_numbers"], "defaults.mask_numbers"))
    return Defaults(
        region=names.region,
        from_name=from_name or DEFAULT_FROM_NAME,
        max_segments=max_segments,
        mask_numbers=mask_numbers,
    )


def _read_groups(node: Node, checker: _Checker, names: _Names) -> dict[str, tuple[Recipient, ...]]:
    entries = checker.mapping(node, "groups") or []
    names.group_names = [name for name, _, _ in entries]
    groups: dict[str, tuple[Recipient, ...]] = {}
    for name, key_node, value_node in entries:
        key = _join("groups", name)
        if not checker.name(key_node, key, "group"):
            continue
        if name in names.contact_names:
            checker.report(
                key_node, key, f"{name!r} is both a contact and a group; rename one of them"
            )
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


def _read_member(node: Node, key: str, checker: _Checker, names: _Names) -> Recipient | None:
    """A group member: a contact name or a phone number (never another group)."""
    text = checker.string(node, key, "a contact name or a phone number")
    if text is None:
        return None
    if text in names.contact_names:
        number = names.contacts.get(text)  # None: its number was invalid, already reported
        return Recipient(number, text) if number else None
    if text in names.group_names:
        checker.report(node, key, f"{text!r} is a group; a group lists contacts and numbers only")
        return None
    try:
        number = parse_number(text, names.region)
    except InvalidNumber as exc:
        if _NUMBERISH_RE.fullmatch(text.strip()):
            checker.report(node, key, str(exc))
        else:
            checker.report(
                node, key, f"unknown contact {text!r} (not a contact, and not a phone number)"
            )
        return None
    return Recipient(number, names.contact_for(number))


def _read_senders(
    node: Node, checker: _Checker, names: _Names
) -> list[tuple[SenderRule, Node | None]]:
    """The senders entries, each with its ``approval`` node (for the approvers check)."""
    rules: list[tuple[SenderRule, Node | None]] = []
    first_seen: dict[str, tuple[str, int]] = {}
    for index, entry in enumerate(checker.sequence(node, "senders") or []):
        key = f"senders[{index}]"
        entries = checker.mapping(entry, key, SENDER_KEYS)
        if entries is None:
            continue
        fields = {name: value for name, _, value in entries}
        users: list[str] = []
        if "users" not in fields:
            checker.report(entry, f"{key}.users", "missing (a list of Slack user IDs)")
        else:
            users_key = f"{key}.users"
            for user_index, (user, user_node) in enumerate(
                checker.user_ids(fields["users"], users_key, required=True)
            ):
                where = f"{users_key}[{user_index}]"
                line = user_node.start_mark.line + 1
                if user in first_seen:
                    other, other_line = first_seen[user]
                    checker.report(
                        user_node,
                        where,
                        f"user {user} is also listed at {other} (line {other_line}); "
                        "a user may appear in only one senders entry",
                    )
                    continue
                first_seen[user] = (where, line)
                users.append(user)
        to: list[str] = []
        if "to" not in fields:
            checker.report(entry, f"{key}.to", "missing (who these users may text)")
        else:
            to = _read_targets(fields["to"], f"{key}.to", checker, names)
        from_names = None
        if "from" in fields:
            from_names = _read_from_names(fields["from"], f"{key}.from", checker, names)
        approval_node = fields.get("approval")
        approval_required = False
        if approval_node is not None:
            text = checker.string(approval_node, f"{key}.approval", "'required' or 'none'")
            if text is not None and text not in APPROVAL_VALUES:
                checker.report(
                    approval_node, f"{key}.approval", f"must be 'required' or 'none', got {text!r}"
                )
            approval_required = APPROVAL_VALUES.get(text or "", False)
        rule = SenderRule(
            users=tuple(users),
            to=tuple(to),
            from_names=from_names,
            approval_required=approval_required,
        )
        rules.append((rule, approval_node if approval_required else None))
    return rules


def _read_targets(node: Node, key: str, checker: _Checker, names: _Names) -> list[str]:
    """``senders[].to``: "*", contact and group names, E.164 numbers and "+44*" patterns."""
    items = checker.sequence(node, key)
    if items is None:
        return []
    if not items:
        checker.report(node, key, 'must list at least one recipient (or "*" for anyone)')
    targets: list[str] = []
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]"
        text = checker.string(item, item_key, "a recipient")
        if text is None:
            continue
        target: str | None = text
        if text == WILDCARD or text in names.contact_names or text in names.group_names:
            pass
        elif text.endswith(WILDCARD):
            if not NUMBER_PATTERN_RE.fullmatch(text):
                checker.report(
                    item,
                    item_key,
                    f"{text!r} is not a number pattern: write '+', digits, then '*' (e.g. '+44*')",
                )
                target = None
        else:
            try:
                target = parse_number(text, names.region)
            except InvalidNumber as exc:
                target = None
                if _NUMBERISH_RE.fullmatch(text.strip()):
                    checker.report(item, item_key, str(exc))
                else:
                    checker.report(
                        item,
                        item_key,
                        f"unknown recipient {text!r} (not a contact, a group, a phone "
                        "number, a '+<digits>*' pattern or '*')",
                    )
        if target is not None and target not in targets:
            targets.append(target)
    return targets


def _read_from_names(
    node: Node, key: str, checker: _Checker, names: _Names
) -> tuple[str, ...] | None:
    items = checker.sequence(node, key)
    if items is None:
        return None
    if not items:
        checker.report(node, key, "must list at least one from_number (leave it out to allow all)")
    chosen: list[str] = []
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]"
        text = checker.string(item, item_key, "a from_numbers name")
        if text is None:
            continue
        if text not in names.from_names:
            checker.report(
                item,
                item_key,
                f"{text!r} is not a from_number {_suggest(text, names.from_names, 'from_numbers')}",
            )
        elif text not in chosen:
            chosen.append(text)
    return tuple(chosen)


def _read_approvals(node: Node, checker: _Checker) -> Approvals | None:
    entries = checker.mapping(node, "approvals", APPROVALS_KEYS)
    if entries is None:
        return None
    fields = {name: value for name, _, value in entries}
    defaults = Approvals()
    approvers = defaults.approvers
    if "approvers" in fields:
        found = checker.user_ids(fields["approvers"], "approvals.approvers", required=False)
        approvers = frozenset(user for user, _ in found)
    channel = defaults.channel
    if "channel" in fields:
        channel = checker.string(fields["channel"], "approvals.channel", "a Slack channel ID")
        if channel is not None and not CHANNEL_ID_RE.fullmatch(channel):
            checker.report(
                fields["channel"],
                "approvals.channel",
                f"{channel!r} is not a Slack channel ID (like C0123ABCD)",
            )
    expire_after = defaults.expire_after
    if "expire_after" in fields:
        expire_after = (
            checker.duration(fields["expire_after"], "approvals.expire_after") or expire_after
        )
    allow_self = defaults.allow_self_approval
    if "allow_self_approval" in fields:
        allow_self = bool(
            checker.boolean(fields["allow_self_approval"], "approvals.allow_self_approval")
        )
    return Approvals(
        approvers=approvers,
        channel=channel,
        expire_after=expire_after,
        allow_self_approval=allow_self,
    )


def _check_approvers(
    senders: list[tuple[SenderRule, Node | None]], approvals: Approvals | None, checker: _Checker
) -> None:
    """A send that needs approval with nobody able to approve would wait until it expires."""
    if approvals is None or approvals.approvers:
        return
    for index, (_, approval_node) in enumerate(senders):
        if approval_node is not None:
            checker.report(
                approval_node,
                f"senders[{index}].approval",
                "approval is required but approvals.approvers lists nobody",
            )


def _read_channels(node: Node, checker: _Checker, names: _Names) -> dict[str, ChannelRule]:
    channels: dict[str, ChannelRule] = {}
    for channel_id, key_node, value_node in checker.mapping(node, "channels") or []:
        key = _join("channels", channel_id)
        if not CHANNEL_ID_RE.fullmatch(channel_id):
            checker.report(
                key_node, key, f"{channel_id!r} is not a Slack channel ID (like C0123ABCD)"
            )
            continue
        entries = checker.mapping(value_node, key, CHANNEL_KEYS)
        if entries is None:
            continue
        fields = {name: value for name, _, value in entries}
        keys = {name: name_node for name, name_node, _ in entries}
        page = None
        if "page" in fields:
            page = checker.string(fields["page"], f"{key}.page", "a group or contact name")
            known = names.group_names + names.contact_names
            if page is not None and page not in known:
                checker.report(
                    fields["page"],
                    f"{key}.page",
                    f"{page!r} is not a group or a contact "
                    f"{_suggest(page, known, 'groups and contacts')}",
                )
        auto_page = None
        if "auto_page" in fields:
            auto_page = _read_auto_page(fields["auto_page"], f"{key}.auto_page", checker)
            if "page" not in fields:
                checker.report(
                    keys["auto_page"],
                    f"{key}.auto_page",
                    "needs 'page' in this channel: the group or contact to page",
                )
        channels[channel_id] = ChannelRule(page=page, auto_page=auto_page)
    return channels


def _read_auto_page(node: Node, key: str, checker: _Checker) -> AutoPage | None:
    entries = checker.mapping(node, key, AUTO_PAGE_KEYS)
    if entries is None:
        return None
    fields = {name: value for name, _, value in entries}
    match = None
    if "match" not in fields:
        checker.report(node, f"{key}.match", "missing (a regular expression to page on)")
    else:
        pattern = checker.string(fields["match"], f"{key}.match", "a regular expression")
        if pattern is not None:
            try:
                match = re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                checker.report(
                    fields["match"], f"{key}.match", f"invalid regular expression: {exc}"
                )
    dedupe_window = DEFAULT_DEDUPE_WINDOW
    if "dedupe_window" in fields:
        dedupe_window = (
            checker.duration(fields["dedupe_window"], f"{key}.dedupe_window") or dedupe_window
        )
    return AutoPage(match=match, dedupe_window=dedupe_window) if match is not None else None


def _read_limits(node: Node, checker: _Checker) -> Limits:
    fields = {name: value for name, _, value in checker.mapping(node, "limits", LIMITS_KEYS) or []}
    values = {name: checker.integer(value, f"limits.{name}") for name, value in fields.items()}
    return Limits(**values)


def parse_interval(text: str) -> timedelta:
    """A poll interval: any ``parse_duration`` form, or decimal seconds such as "0.5s"."""
    value = text.strip()
    match = _FRACTIONAL_SECONDS_RE.fullmatch(value)
    if match is None:
        return parse_duration(value)
    seconds = float(match.group(1))
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return timedelta(seconds=seconds)


def _read_replies(node: Node, checker: _Checker) -> Replies:
    """The optional ``replies`` section; absent means no polling (it costs 2Chat credits)."""
    fields = {
        name: value for name, _, value in checker.mapping(node, "replies", REPLIES_KEYS) or []
    }
    defaults = Replies()
    poll_interval = defaults.poll_interval
    if "poll_interval" in fields:
        key = "replies.poll_interval"
        text = checker.string(fields["poll_interval"], key, "a duration such as 30s")
        if text is not None:
            try:
                poll_interval = parse_interval(text)
            except ValueError as exc:
                checker.report(fields["poll_interval"], key, str(exc))
    window = defaults.window
    if "window" in fields:
        window = checker.duration(fields["window"], "replies.window") or window
    ack_words = defaults.ack_words
    if "ack_words" in fields:
        ack_words = _read_ack_words(fields["ack_words"], checker)
    channel = defaults.unknown_numbers_channel
    if "unknown_numbers_channel" in fields:
        key = "replies.unknown_numbers_channel"
        node = fields["unknown_numbers_channel"]
        channel = checker.string(node, key, "a Slack channel ID")
        if channel is not None and not CHANNEL_ID_RE.fullmatch(channel):
            checker.report(node, key, f"{channel!r} is not a Slack channel ID (like C0123ABCD)")
            channel = None
    return Replies(
        poll_interval=poll_interval,
        window=window,
        ack_words=ack_words,
        unknown_numbers_channel=channel,
    )


def _read_ack_words(node: Node, checker: _Checker) -> tuple[str, ...]:
    """Words (compared case-insensitively) that acknowledge a page; never STOP or START."""
    key = "replies.ack_words"
    items = checker.sequence(node, key)
    if items is None:
        return Replies.ack_words
    if not items:
        checker.report(node, key, "must list at least one word (leave it out for ack, ok)")
    words: list[str] = []
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]"
        text = checker.string(item, item_key, "a word")
        if text is None:
            continue
        word = reply_keyword(text)
        if not word:
            checker.report(item, item_key, "must not be empty")
        elif word in STOP_WORDS | START_WORDS:
            checker.report(item, item_key, f"{text!r} is an opt-out word and cannot acknowledge")
        elif word not in words:
            words.append(word)
    return tuple(words)


def summarize(policy: Policy) -> str:
    """A few lines for ``sms-bridge check-config``: what the file allows, at a glance."""
    defaults = policy.defaults
    lines = [
        f"defaults: region {defaults.region}, from {defaults.from_name}, "
        f"at most {defaults.max_segments} segment(s), "
        f"numbers {'masked' if defaults.mask_numbers else 'shown in full'} in channels",
        f"from_numbers ({len(policy.from_numbers)}): "
        + ", ".join(f"{name} {number}" for name, number in policy.from_numbers.items()),
        f"contacts ({len(policy.contacts)}): {', '.join(policy.contacts) or '-'}",
        f"groups ({len(policy.groups)}): "
        + (
            ", ".join(
                f"{name} ({len(members)} member{'s' * (len(members) != 1)})"
                for name, members in policy.groups.items()
            )
            or "-"
        ),
    ]
    users = [user for rule in policy.senders for user in rule.users]
    needs_approval = [
        user for rule in policy.senders if rule.approval_required for user in rule.users
    ]
    lines.append(
        f"senders: {len(policy.senders)} entr{'y' if len(policy.senders) == 1 else 'ies'}, "
        f"{len(users)} user{'s' * (len(users) != 1)}"
        + (f"; approval required for {', '.join(needs_approval)}" if needs_approval else "")
        + ("" if users else " (nobody may send)")
    )
    approvals = policy.approvals
    lines.append(
        f"approvers ({len(approvals.approvers)}): {', '.join(sorted(approvals.approvers)) or '-'}; "
        f"requests go to {approvals.channel or 'the requesting channel'}, "
        f"expire after {format_duration(approvals.expire_after)}, "
        f"self-approval {'allowed' if approvals.allow_self_approval else 'not allowed'}"
    )
    channel_parts = []
    for channel_id, rule in policy.channels.items():
        part = f"{channel_id} pages {rule.page or '-'}"
        if rule.auto_page is not None:
            part += (
                f", auto-page on /{rule.auto_page.match.pattern}/ "
                f"(dedupe {format_duration(rule.auto_page.dedupe_window)})"
            )
        channel_parts.append(part)
    lines.append(f"channels ({len(policy.channels)}): {'; '.join(channel_parts) or '-'}")
    limits = policy.limits
    limit_parts = [
        f"{name.replace('_', ' ')} {value}"
        for name, value in (
            ("per_sender_per_hour", limits.per_sender_per_hour),
            ("per_recipient_per_hour", limits.per_recipient_per_hour),
            ("requests_per_minute", limits.requests_per_minute),
        )
        if value is not None
    ]
    lines.append(f"limits: {', '.join(limit_parts) or 'none'}")
    lines.append(_replies_summary(policy))
    return "\n".join(lines)


def _replies_summary(policy: Policy) -> str:
    """How replies are relayed, and what polling can cost in 2Chat credits."""
    replies = policy.replies
    if replies.poll_interval is None:
        return "replies: not polled (set replies.poll_interval to relay SMS replies into Slack)"
    seconds = replies.poll_interval.total_seconds()
    per_hour = 3600 / seconds
    whole = seconds == int(seconds)
    interval = format_duration(replies.poll_interval) if whole else f"{seconds:g}s"
    unknown = replies.unknown_numbers_channel or "dropped"
    return (
        f"replies: polled every {interval} while a send is younger than "
        f"{format_duration(replies.window)} (up to {per_hour:,.0f} 2Chat credits an hour per "
        f"from_number, plus one per new reply); ack words: {', '.join(replies.ack_words)}; "
        f"replies from unknown numbers: {unknown}"
    )
