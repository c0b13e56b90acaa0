import pytest

from bot.core.commands import (
    SmsCommand,
    SmsText,
    parse_sms_command,
    read_slack_text,
    sms_text,
    take_recipients,
    unnamed_users,
    unslack,
)


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
        ("from:uk", SmsCommand("modal", from_name="uk")),
        ("alice fish &amp; chips", SmsCommand("send", to="alice", text="fish & chips")),
    ],
)
def test_parse_sms_command(raw: str, expected: SmsCommand) -> None:
    assert parse_sms_command(raw) == expected


def test_unslack_undoes_slack_escaping_and_link_wrappers() -> None:
    assert unslack("&lt;b&gt; &amp; co") == "<b> & co"
    assert unslack("<tel:+447700900123|+44 7700 900123>") == "+44 7700 900123"
    assert unslack("<tel:+447700900123>") == "+447700900123"
    assert unslack("<mailto:ops@x.test|ops@x.test>") == "ops@x.test"
    assert unslack("ask <@U0DEV1|dev> now") == "ask @dev now"
    assert unslack("ask <@U0DEV1> now", {"U0DEV1": "Dana"}) == "ask @Dana now"
    assert unslack("in <#C0OPS|ops> and <!here>") == "in #ops and @here"
    assert unslack("see <https://x.test/a>") == "see https://x.test/a"


def test_phone_number_linkified_by_slack_is_a_recipient() -> None:
    parsed = parse_sms_command("<tel:+447700900123|+447700900123> on my way")
    assert parsed == SmsCommand("send", to="+447700900123", text="on my way")


def test_slack_number_link_with_spaces_in_its_label_is_one_recipient() -> None:
    # Slack labels a typed number as it was typed, spaces and all; the target is the number.
    parsed = parse_sms_command("<tel:+447700900999|+44 7700 900999> hello")
    assert parsed == SmsCommand("send", to="+447700900999", text="hello")


def test_recipient_comes_from_the_link_target_never_its_label() -> None:
    parsed = parse_sms_command("<tel:+447700900999|+44 7700 900123> hello")
    assert parsed.to == "+447700900999"


def test_linked_numbers_in_a_list_and_after_from() -> None:
    raw = "from:uk <tel:07700900999|07700 900999>, alice,<tel:+34600000001|+34 600 000 001> hi"
    parsed = parse_sms_command(raw)
    assert parsed == SmsCommand(
        "send", to="07700900999,alice,+34600000001", text="hi", from_name="uk"
    )


def test_user_and_group_mentions_as_recipients_keep_their_ids() -> None:
    """The policy resolves people by Slack id; a label ("dev") could be anyone's name."""
    assert parse_sms_command("<@U0DEV1|dev> hi").to == "<@U0DEV1>"
    assert parse_sms_command("<@W0DEV1> hi").to == "<@W0DEV1>"
    parsed = parse_sms_command("<!subteam^S0DBONCALL|@db-oncall>, <@U0DEV1> hi <@U0BOB|bob>")
    assert parsed.to == "<!subteam^S0DBONCALL>,<@U0DEV1>"
    assert parsed.text == "hi @bob"


def test_channels_and_addresses_as_recipients_read_as_slack_shows_them() -> None:
    assert parse_sms_command("<!here> hi").to == "@here"
    assert parse_sms_command("<#C0OPS|ops> hi").to == "#ops"
    assert parse_sms_command("<mailto:ops@x.test|ops@x.test> hi").to == "ops@x.test"


def test_take_recipients_leaves_the_rest_in_slack_markup() -> None:
    to, rest = take_recipients("<tel:+447700900999|+44 7700 900999>, bob see <https://x.test|x>")
    assert to == "+447700900999,bob"
    assert rest == " see <https://x.test|x>"


@pytest.mark.parametrize(
    ("mrkdwn", "sms"),
    [
        (
            "CRITICAL: see <https://grafana.example/d/1|dashboard>",
            "CRITICAL: see dashboard (https://grafana.example/d/1)",
        ),
        ("mail <mailto:ops@x.test|the ops desk>", "mail the ops desk (ops@x.test)"),
        ("call <tel:+447700900999|the desk>", "call the desk (+447700900999)"),
        ("<https://a.test/?x=1&amp;y=2|A &amp; B>", "A & B (https://a.test/?x=1&y=2)"),
    ],
)
def test_link_labels_are_followed_by_their_url(mrkdwn: str, sms: str) -> None:
    assert read_slack_text(mrkdwn) == SmsText(sms, links_spelled_out=True)
    assert unslack(mrkdwn) == sms


@pytest.mark.parametrize(
    ("mrkdwn", "sms"),
    [
        ("see <https://x.test/a|https://x.test/a>", "see https://x.test/a"),
        ("see <https://x.test/a>", "see https://x.test/a"),
        ("see <http://x.test|x.test>", "see http://x.test"),
        ("call <tel:+447700900999|+44 7700 900999>", "call +44 7700 900999"),
        ("ask <@U0DEV1|dev>", "ask @dev"),
        ("plain text", "plain text"),
    ],
)
def test_a_link_that_shows_its_own_target_is_not_spelled_out(mrkdwn: str, sms: str) -> None:
    assert read_slack_text(mrkdwn) == SmsText(sms, links_spelled_out=False)


def test_a_sent_message_says_when_its_links_were_spelled_out() -> None:
    spelled = parse_sms_command("alice CRITICAL: see <https://grafana.example/d/1|dashboard>")
    assert spelled.text == "CRITICAL: see dashboard (https://grafana.example/d/1)"
    assert spelled.links_spelled_out
    assert not parse_sms_command("alice see <https://x.test/a>").links_spelled_out


def test_links_are_spelled_out_unless_only_the_bare_url_fits() -> None:
    link = "<https://grafana.example/d/1|the dashboard>"
    assert sms_text(f"see {link}", 3).text == "see the dashboard (https://grafana.example/d/1)"
    long = "x" * 420  # labelled: 4 segments; bare: 3
    assert sms_text(f"{long} {link}", 3).text == f"{long} https://grafana.example/d/1"
    too_long = "x" * 600  # over the limit either way: the clearer text, for the refusal
    assert sms_text(f"{too_long} {link}", 3).text.endswith("(https://grafana.example/d/1)")
    assert sms_text(f"{long} {link}").text.endswith("the dashboard (https://grafana.example/d/1)")


@pytest.mark.parametrize(
    ("mrkdwn", "sms"),
    [
        ("<!channel> db down", "@channel db down"),
        ("<!here> db down", "@here db down"),
        ("<!everyone> db down", "@everyone db down"),
        ("<!here|here> old style", "@here old style"),
        ("see <#C0INC42|inc-42>", "see #inc-42"),
        ("see <#C0INC42>", "see #channel"),
        ("ask <!subteam^S0DB|@db-oncall>", "ask @db-oncall"),
        ("ask <!subteam^S0DB|db-oncall>", "ask @db-oncall"),
        ("at <!date^1392734382^{date}|Feb 18, 2014>", "at Feb 18, 2014"),
        ("ask <@U0OTHER>", "ask @Dana Scully"),
        ("ask <@U0OTHER|>", "ask @Dana Scully"),
        ("ask <@U0GONE>", "ask @someone"),
        ("ask <@U0OTHER|dana>", "ask @dana"),
    ],
)
def test_mentions_read_as_slack_shows_them_never_as_markup_or_ids(mrkdwn: str, sms: str) -> None:
    """What a person reads in Slack is what the phone shows: no "!channel", no raw ids."""
    assert unslack(mrkdwn, {"U0OTHER": "Dana Scully"}) == sms


def test_unnamed_users_are_found_in_text_and_rich_text() -> None:
    message = {
        "text": "<@U0A> and <@U0B|bee> and <@W0C> and <@U0E|>",
        "blocks": [{"type": "rich_text", "elements": [{"type": "user", "user_id": "U0D"}]}],
    }
    assert unnamed_users(message) == {"U0A", "W0C", "U0D", "U0E"}
    assert unnamed_users("no one") == set()


@pytest.mark.parametrize(
    ("mrkdwn", "sms"),
    [
        (
            "<https://status.example.com/x|status.example.com/x>",
            "https://status.example.com/x",
        ),
        ("<http://status.example.com|status.example.com>", "http://status.example.com"),
        ("<https://x.test/a/|x.test/a>", "https://x.test/a/"),
        ("<mailto:ops@x.test|ops@x.test>", "ops@x.test"),
    ],
)
def test_a_link_labelled_with_its_own_address_keeps_its_scheme(mrkdwn: str, sms: str) -> None:
    """A phone opens "status.example.com/x" as http, if at all: the SMS has the link."""
    assert read_slack_text(mrkdwn) == SmsText(sms, links_spelled_out=False)
