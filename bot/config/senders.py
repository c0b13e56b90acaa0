"""The sections that decide who may send: ``senders`` (to whom, from which numbers, with or
without approval) and ``approvals`` (who approves, where, and for how long)."""

from __future__ import annotations

import re

from yaml.nodes import Node

from bot.config.checker import Checker
from bot.config.recipients import Names, UnknownName, read_number_or_name
from bot.config.yaml_nodes import line_of, suggest
from bot.core.model import WILDCARD, Approvals, SenderRule

SENDER_KEYS: tuple[str, ...] = ("users", "to", "from", "approval")
APPROVALS_KEYS: tuple[str, ...] = ("approvers", "channel", "expire_after", "allow_self_approval")
APPROVAL_VALUES: dict[str, bool] = {"required": True, "none": False}
NUMBER_PATTERN_RE = re.compile(r"\+[0-9]+\*")


def read_senders(
    node: Node, checker: Checker, names: Names
) -> list[tuple[SenderRule, Node | None]]:
    """The senders entries, each with its ``approval`` node (for the approvers check)."""
    rules: list[tuple[SenderRule, Node | None]] = []
    first_seen: dict[str, tuple[str, int]] = {}
    for index, entry in enumerate(checker.sequence(node, "senders") or []):
        key = f"senders[{index}]"
        fields = checker.fields(entry, key, SENDER_KEYS)
        if fields is None:
            continue
        users: list[str] = []
        if "users" not in fields:
            checker.report(entry, f"{key}.users", "missing (a list of Slack user IDs)")
        else:
            users = _read_users(fields["users"], f"{key}.users", checker, first_seen)
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
            approval_required = _read_approval(approval_node, f"{key}.approval", checker)
        rule = SenderRule(
            users=tuple(users),
            to=tuple(to),
            from_names=from_names,
            approval_required=approval_required,
        )
        rules.append((rule, approval_node if approval_required else None))
    return rules


def _read_users(
    node: Node, key: str, checker: Checker, first_seen: dict[str, tuple[str, int]]
) -> list[str]:
    """``senders[].users``; a user already in an earlier entry (``first_seen``) is refused,
    since which entry's rules apply to them would otherwise be a guess."""
    users: list[str] = []
    for index, (user, user_node) in enumerate(checker.user_ids(node, key, required=True)):
        where = f"{key}[{index}]"
        if user in first_seen:
            other, other_line = first_seen[user]
            checker.report(
                user_node,
                where,
                f"user {user} is also listed at {other} (line {other_line}); "
                "a user may appear in only one senders entry",
            )
            continue
        first_seen[user] = (where, line_of(user_node))
        users.append(user)
    return users


def _read_targets(node: Node, key: str, checker: Checker, names: Names) -> list[str]:
    """``senders[].to``: "*", contact and group names, E.164 numbers and "+44*" patterns."""
    empty = 'must list at least one recipient (or "*" for anyone)'
    targets: list[str] = []
    for text, item, item_key in checker.strings(node, key, "a recipient", empty) or []:
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
            target = read_number_or_name(
                text,
                item,
                item_key,
                checker,
                names.region,
                UnknownName(
                    "recipient",
                    "not a contact, a group, a phone number, a '+<digits>*' pattern or '*'",
                    names.contact_names + names.group_names,
                ),
            )
        if target is not None and target not in targets:
            targets.append(target)
    return targets


def _read_from_names(
    node: Node, key: str, checker: Checker, names: Names
) -> tuple[str, ...] | None:
    """``senders[].from``: the from_numbers these users may send from."""
    empty = "must list at least one from_number (leave it out to allow all)"
    items = checker.strings(node, key, "a from_numbers name", empty)
    if items is None:
        return None
    chosen: list[str] = []
    for text, item, item_key in items:
        if text not in names.from_names:
            checker.report(
                item,
                item_key,
                f"{text!r} is not a from_number {suggest(text, names.from_names, 'from_numbers')}",
            )
        elif text not in chosen:
            chosen.append(text)
    return tuple(chosen)


def _read_approval(node: Node, key: str, checker: Checker) -> bool:
    """``senders[].approval``: whether these users' sends wait for an approver."""
    text = checker.string(node, key, "'required' or 'none'")
    if text is not None and text not in APPROVAL_VALUES:
        checker.report(node, key, f"must be 'required' or 'none', got {text!r}")
    return APPROVAL_VALUES.get(text or "", False)


def read_approvals(node: Node, checker: Checker) -> Approvals | None:
    """The ``approvals`` section; None (reported) when it is not a mapping."""
    fields = checker.fields(node, "approvals", APPROVALS_KEYS)
    if fields is None:
        return None
    defaults = Approvals()
    approvers = defaults.approvers
    if "approvers" in fields:
        found = checker.user_ids(fields["approvers"], "approvals.approvers", required=False)
        approvers = frozenset(user for user, _ in found)
    channel = defaults.channel
    if "channel" in fields:
        channel = checker.channel_id(fields["channel"], "approvals.channel")
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


def check_approvers(
    senders: list[tuple[SenderRule, Node | None]], approvals: Approvals | None, checker: Checker
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
