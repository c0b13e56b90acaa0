import pytest

from bot.core.commands import SmsCommand, parse_sms_command, unslack


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("help", SmsCommand("help")),
        ("  HELP ", SmsCommand("help")),
        ("", SmsCommand("modal")),
        ("alice", SmsCommand("modal", to="alice")),
        ("alice hello there", SmsCommand("send", to="alice", text="hello there")),
        ("alice,bob hi", SmsCommand("send", to="alice,bob", text="hi")),
        ("alice, bob hi", SmsCommand("send", to="alice,bob", text="hi")),
        ("alice ,bob hi", SmsCommand("send", to="alice,bob", text="hi")),
        ("alice\nline one\nline two", SmsCommand("send", to="alice", text="line one\nline two")),
        ("from:uk carol hola", SmsCommand("send", to="carol", text="hola", from_name="uk")),
        ("from=uk carol", SmsCommand("modal", to="carol", from_name="uk")),
    ],
)
def test_parse_sms_command(raw: str, expected: SmsCommand) -> None:
    assert parse_sms_command(raw) == expected


def test_unslack_undoes_slack_escaping_and_link_wrappers() -> None:
    assert unslack("&lt;b&gt; &amp; co") == "<b> & co"
    assert unslack("<tel:+447700900123|+44 7700 900123>") == "+44 7700 900123"
    assert unslack("<tel:+447700900123>") == "+447700900123"
    assert unslack("ask <@U0DEV1|dev> now") == "ask @dev now"
    assert unslack("see <https://x.test/a>") == "see https://x.test/a"


def test_phone_number_linkified_by_slack_is_a_recipient() -> None:
    parsed = parse_sms_command("<tel:+447700900123|+447700900123> on my way")
    assert parsed == SmsCommand("send", to="+447700900123", text="on my way")
