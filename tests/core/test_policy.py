from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import load_policy
from bot.core.directory import EMPTY_DIRECTORY
from bot.core.model import Policy
from bot.core.policy import (
    Allow,
    NeedsApproval,
    Refuse,
    decide,
    decide_auto_page,
    split_targets,
    trim_to_segments,
)

CONFIG = Path(__file__).resolve().parents[2] / "config" / "bridge.yaml"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(CONFIG)


def test_admin_may_text_anyone_outside_the_us(policy: Policy) -> None:
    decision = decide(policy, "U0ADMIN", ["+34 600 000 001"], "hola")
    assert isinstance(decision, Allow)
    assert [r.number for r in decision.plan.recipients] == ["+34600000001"]
    assert decision.plan.recipients[0].name == "carol"  # a typed number finds its contact
    assert decision.plan.from_name == "main"
    assert decision.plan.from_number == "+17137157533"
    assert decision.plan.segments.segments == 1


def test_group_expands_and_duplicates_collapse(policy: Policy) -> None:
    decision = decide(policy, "U0DEV1", split_targets("db-oncall, alice,+447700900456"), "db down")
    assert isinstance(decision, Allow)
    assert [r.label for r in decision.plan.recipients] == ["alice", "bob"]


def test_national_number_uses_default_region(policy: Policy) -> None:
    decision = decide(policy, "U0DEV2", ["07700900789"], "hi")
    assert isinstance(decision, Allow)  # "+447700900*" pattern
    assert decision.plan.recipients[0].number == "+447700900789"


def test_user_in_no_senders_entry_is_refused(policy: Policy) -> None:
    decision = decide(policy, "U0STRANGER", ["alice"], "hi")
    assert isinstance(decision, Refuse)
    assert decision.for_field("sender") == "you are not allowed to send SMS from Slack"


def test_recipient_outside_allowlist_is_refused(policy: Policy) -> None:
    decision = decide(policy, "U0DEV1", ["+442079460958"], "hi")
    assert isinstance(decision, Refuse)
    assert decision.for_field("to") == "you may not text +442079460958"


def test_us_destination_refused_even_for_wildcard_sender(policy: Policy) -> None:
    decision = decide(policy, "U0ADMIN", ["+12125550123"], "hi")
    assert isinstance(decision, Refuse)
    assert "2Chat does not support A2P messaging to US numbers" in decision.reason


def test_canadian_destination_allowed(policy: Policy) -> None:
    assert isinstance(decide(policy, "U0ADMIN", ["+14165550199"], "hi"), Allow)


def test_unknown_name_and_invalid_number_are_both_reported(policy: Policy) -> None:
    decision = decide(policy, "U0ADMIN", ["bobb", "+44123"], "hi")
    assert isinstance(decision, Refuse)
    assert len(decision.problems) == 2
    assert "'bobb' is not a contact, a group or a phone number" in decision.reason
    assert "'+44123' is not a valid phone number" in decision.reason


def test_from_number_outside_the_users_list_is_refused(policy: Policy) -> None:
    decision = decide(policy, "U0DEV1", ["alice"], "hi", from_name="uk")
    assert isinstance(decision, Refuse)
    assert decision.for_field("from") == "you may not send from 'uk'"
    unknown = decide(policy, "U0ADMIN", ["alice"], "hi", from_name="nope")
    assert isinstance(unknown, Refuse)
    assert unknown.for_field("from") == "'nope' is not one of the bridge's numbers"


def test_admin_may_choose_another_from_number(policy: Policy) -> None:
    decision = decide(policy, "U0ADMIN", ["alice"], "hi", from_name="uk")
    assert isinstance(decision, Allow)
    assert decision.plan.from_number == "+442071838750"


def test_text_limits(policy: Policy) -> None:
    empty = decide(policy, "U0ADMIN", ["alice"], "   ")
    assert isinstance(empty, Refuse) and empty.for_field("text") == "the message is empty"
    at_limit = decide(policy, "U0ADMIN", ["alice"], "x" * 459)
    assert isinstance(at_limit, Allow) and at_limit.plan.segments.segments == 3
    over = decide(policy, "U0ADMIN", ["alice"], "x" * 460)
    assert isinstance(over, Refuse)
    assert over.for_field("text") == "the message is 4 SMS segments (GSM-7); the limit is 3"
    unicode_over = decide(policy, "U0ADMIN", ["alice"], "ê" * 202)
    assert isinstance(unicode_over, Refuse)
    assert "'ê' forces UCS-2" in (unicode_over.for_field("text") or "")


def test_no_recipient(policy: Policy) -> None:
    decision = decide(policy, "U0ADMIN", [], "hi")
    assert isinstance(decision, Refuse)
    assert decision.for_field("to") is not None


def test_approval_required_senders_need_approval(policy: Policy) -> None:
    decision = decide(policy, "U0INTERN", ["alice"], "hi")
    assert isinstance(decision, NeedsApproval)
    assert decision.plan.sender == "U0INTERN"


def test_max_segments_comes_from_the_policy(policy: Policy) -> None:
    strict = replace(policy, defaults=replace(policy.defaults, max_segments=1))
    assert isinstance(decide(strict, "U0ADMIN", ["alice"], "x" * 161), Refuse)


def test_auto_page_pages_the_channels_group_with_trimmed_text(policy: Policy) -> None:
    decision = decide_auto_page(policy, "C0INCIDENT", "CRITICAL " + "x" * 600, EMPTY_DIRECTORY)
    assert isinstance(decision, Allow)
    assert [r.label for r in decision.plan.recipients] == ["alice", "bob"]
    assert decision.plan.sender == "auto-page:C0INCIDENT"
    assert decision.plan.segments.segments == 3 and decision.plan.text.endswith("...")
    assert isinstance(decide_auto_page(policy, "C0OTHER", "CRITICAL", EMPTY_DIRECTORY), Refuse)


def test_trim_to_segments_keeps_short_text() -> None:
    assert trim_to_segments("short", 1) == "short"
    assert len(trim_to_segments("é" * 200 + "ê", 1)) <= 70
