"""Load the policy file into a validated ``Policy``, reporting every problem at once.

Each problem reads ``"file:line: dotted.key: why"``, which is what someone fixing the file
needs. Only the scalars whose type matters (ints, booleans) are constructed; names, numbers,
durations and regexes are taken as the text written, so ``+447700900123`` unquoted stays a
number. Each section is read by its own module; this one reads the top level.
"""

from __future__ import annotations

import os

from yaml.nodes import Node

from bot.config.channels import read_channels
from bot.config.checker import Checker
from bot.config.escalations import read_escalations
from bot.config.limits import read_limits
from bot.config.recipients import read_defaults, read_groups, read_names
from bot.config.replies import read_replies
from bot.config.retention import read_retention
from bot.config.senders import check_approvers, read_approvals, read_senders
from bot.config.yaml_nodes import compose, empty, is_null, kind, line_of
from bot.core.model import Policy
from bot.errors import ConfigError

# The sections of the file. To extend the format, add the key here (or to the section's own
# ``*_KEYS``) and read it in the matching module; anything not listed is an unknown key.
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
    "retention",
    "escalations",
)
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)


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
    """Validate policy YAML given as a string; ``source`` names it in every problem.

    Likely mistakes that still leave a working policy are not refused: they are returned in
    ``Policy.warnings``, in the same "file:line: key: why" form.
    """
    root = compose(text, source)
    checker = Checker(source)
    policy = _read_policy(root, checker)
    if checker.problems or policy is None:
        raise ConfigError(checker.sorted_problems())
    return policy


def _read_policy(root: Node | None, checker: Checker) -> Policy | None:
    """The whole file, declarations first so that later sections can check names against
    them; None when anything is wrong (the checker holds why)."""
    if root is None or is_null(root):
        checker.report(1, "", "the policy file is empty (it needs version and from_numbers)")
        return None
    found = checker.fields(root, "", TOP_KEYS)
    if found is None:
        return None
    sections = {name: found.get(name, empty(root)) for name in TOP_KEYS}
    _read_version(found.get("version"), root, checker)
    names, defaults_nodes = read_names(
        sections["defaults"], found.get("from_numbers"), sections["contacts"], root, checker
    )
    defaults = read_defaults(defaults_nodes, checker, names)
    groups = read_groups(sections["groups"], checker, names)
    senders = read_senders(sections["senders"], checker, names)
    approvals = read_approvals(sections["approvals"], checker)
    check_approvers(senders, approvals, checker)
    escalations, ladder_names = read_escalations(sections["escalations"], checker, names)
    channels = read_channels(sections["channels"], checker, names, ladder_names)
    limits = read_limits(sections["limits"], checker)
    replies = read_replies(sections["replies"], checker)
    retention = read_retention(sections["retention"], checker, replies)
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
        retention=retention,
        escalations=escalations,
        contact_slack=dict(names.contact_slack),
        slack_groups=dict(names.slack_groups),
        source=checker.source,
        warnings=tuple(checker.sorted_warnings()),
    )


def _read_version(node: Node | None, top: Node, checker: Checker) -> None:
    """``version`` is required, so that a future format is refused rather than misread."""
    if node is None:
        checker.report(line_of(top), "version", f"missing (must be {SUPPORTED_VERSIONS[0]})")
    elif checker.int_value(node) not in SUPPORTED_VERSIONS:
        supported = " or ".join(str(version) for version in SUPPORTED_VERSIONS)
        checker.report(node, "version", f"must be {supported}, got {kind(node)}")
