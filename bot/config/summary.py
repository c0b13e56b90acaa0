"""What a policy allows, in a few lines, for ``sms-bridge check-config``."""

from __future__ import annotations

from bot.config.durations import format_duration
from bot.core.model import POLL_SHARE, Policy


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def summarize(policy: Policy) -> str:
    """A few lines for ``sms-bridge check-config``: what the file allows, at a glance."""
    return "\n".join(
        [
            *_declared_lines(policy),
            _senders_line(policy),
            _approvals_line(policy),
            _channels_line(policy),
            _limits_line(policy),
            _replies_line(policy),
            *_escalation_lines(policy),
            _retention_line(policy),
        ]
    )


def _declared_lines(policy: Policy) -> list[str]:
    """The defaults, and the numbers, contacts and groups the file names."""
    defaults = policy.defaults
    groups = ", ".join(
        f"{name} (Slack user group {policy.slack_groups[name]})"
        if name in policy.slack_groups
        else f"{name} ({_plural(len(members), 'member')})"
        for name, members in policy.groups.items()
    )
    contacts = [
        f"{name} ({policy.contact_slack[name]})" if name in policy.contact_slack else name
        for name in dict.fromkeys([*policy.contacts, *policy.contact_slack])
    ]
    profiles = ", Slack profile phones used" if defaults.slack_profile_numbers else ""
    return [
        f"defaults: region {defaults.region}, from {defaults.from_name}, "
        f"at most {defaults.max_segments} segment(s), "
        f"numbers {'masked' if defaults.mask_numbers else 'shown in full'} in channels" + profiles,
        f"from_numbers ({len(policy.from_numbers)}): "
        + ", ".join(f"{name} {number}" for name, number in policy.from_numbers.items()),
        f"contacts ({len(contacts)}): {', '.join(contacts) or '-'}",
        f"groups ({len(policy.groups)}): {groups or '-'}",
    ]


def _senders_line(policy: Policy) -> str:
    users = [user for rule in policy.senders for user in rule.users]
    needs_approval = [
        user for rule in policy.senders if rule.approval_required for user in rule.users
    ]
    return (
        f"senders: {len(policy.senders)} entr{'y' if len(policy.senders) == 1 else 'ies'}, "
        f"{_plural(len(users), 'user')}"
        + (f"; approval required for {', '.join(needs_approval)}" if needs_approval else "")
        + ("" if users else " (nobody may send)")
    )


def _approvals_line(policy: Policy) -> str:
    approvals = policy.approvals
    return (
        f"approvers ({len(approvals.approvers)}): {', '.join(sorted(approvals.approvers)) or '-'}; "
        f"requests go to {approvals.channel or 'the requesting channel'}, "
        f"expire after {format_duration(approvals.expire_after)}, "
        f"self-approval {'allowed' if approvals.allow_self_approval else 'not allowed'}"
    )


def _channels_line(policy: Policy) -> str:
    parts = []
    for channel_id, rule in policy.channels.items():
        part = f"{channel_id} pages {rule.page or '-'}"
        if rule.auto_page is not None:
            part += (
                f", auto-page on /{rule.auto_page.match.pattern}/ "
                f"(dedupe {format_duration(rule.auto_page.dedupe_window)})"
            )
        parts.append(part)
    return f"channels ({len(policy.channels)}): {'; '.join(parts) or '-'}"


def _limits_line(policy: Policy) -> str:
    limits = policy.limits
    parts = [
        f"{name.replace('_', ' ')} {value}"
        for name, value in (
            ("per_sender_per_hour", limits.per_sender_per_hour),
            ("per_recipient_per_hour", limits.per_recipient_per_hour),
            ("requests_per_minute", limits.requests_per_minute),
        )
        if value is not None
    ]
    return f"limits: {', '.join(parts) or 'none'}"


def _replies_line(policy: Policy) -> str:
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
        f"from_number, plus one per text sent and per reply); {_polling_budget(policy, seconds)}; "
        f"ack words: {', '.join(replies.ack_words)}; replies from unknown numbers: {unknown}"
        f"{_page_polling(policy)}"
    )


def _page_polling(policy: Policy) -> str:
    """The faster polling while an escalating page awaits its ack, and what it costs."""
    fast = policy.replies.page_poll_interval
    if fast is None:
        return ""
    per_hour = 3600 / fast.total_seconds()
    return (
        f"; while an escalating page awaits its ack, every {fast.total_seconds():g}s "
        f"(up to {per_hour:,.0f} credits an hour per from_number, only then)"
    )


def _escalation_lines(policy: Policy) -> list[str]:
    """Each ladder as its rungs, and the channels that run it."""
    lines = []
    for name, ladder in sorted(policy.escalations.items()):
        rungs = " -> ".join(
            ", ".join(tier.page) + (f" ({format_duration(tier.wait)})" if tier.wait else "")
            for tier in ladder.tiers
        )
        channels = sorted(c for c, rule in policy.channels.items() if rule.escalation == name)
        lines.append(
            f"escalation {name}: {rungs}; repeat {ladder.repeat}; "
            f"used in {', '.join(channels) or 'no channel'}"
        )
    return lines


def _polling_budget(policy: Policy, seconds: float) -> str:
    """Polls share 2Chat's per-minute budget with sends, behind them and within a share of
    it: say what that share is and whether polling every from_number fits in it."""
    share = f"{POLL_SHARE:.0%}"
    cap = policy.limits.requests_per_minute
    if cap is None:
        return f"polls wait behind sends and use at most {share} of 2Chat's per-minute limit"
    spare = max(1, int(cap * POLL_SHARE))
    needed = len(policy.from_numbers) * 60 / seconds
    text = f"polls wait behind sends and use at most {spare} of the {cap} calls a minute"
    if needed > spare:
        text += (
            f" (polling {_plural(len(policy.from_numbers), 'from_number')} needs "
            f"{needed:,.0f} a minute, so polls run late)"
        )
    return text


def _retention_line(policy: Policy) -> str:
    keep = format_duration(policy.retention.keep)
    return (
        f"retention: finished requests, their sends and replies are purged after {keep} "
        "(the audit export covers that window); opt-outs are kept"
    )
