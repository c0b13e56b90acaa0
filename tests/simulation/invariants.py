"""What must hold, read from the stand-ins' records and the database (never from the app's
own account of itself): I1-I8 as the module docstring of ``world`` lists them."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.simulation.database import Database

GENERAL = "C0GENERAL"
CODE = re.compile(r"[A-Z][0-9]{1,3}")  # a page's reply code, as the ack_code step replies it
NOT_SENT_MARKS = ("not sent", "outcome unknown", "may or may not", ":x:")
POLL_SECONDS = 0.2  # the replies' poll_interval (a reload may make it 0.3 s)
TWOCHAT_WINDOW = 60.0  # 2Chat counts calls over a sliding minute


def read_within(per_minute: int | None, busy: bool, moved: int = 1) -> float:
    """I3's bound: two poll intervals, where one is the poll's wait plus the reads it takes
    at the account's pace (a listing and a conversation per number: four calls), plus a
    second for the app's own scheduling. While texts take the budget (``busy``: sent since,
    or in the minute before, which 2Chat still counts), or fill the share of the minute
    polls may use, polls get their floor: a listing and a read of each of the ``moved``
    conversations, one call every 600/L seconds (docs/2chat.md). Counted from the SMS's
    arrival, or from the end of the last fault that holds reads up (a restart, a database
    cut, a slow 2Chat, a reload, a change of the account's limit)."""
    pace = 60 / (per_minute or 80)
    one_poll = 1.5 * POLL_SECONDS + ((1 + moved) * 10 * pace if busy else 4 * pace)
    return 2 * one_poll + 1.0


# I6: after the account's limit drops, each process may meet this many 429s before it has
# read the new limit (GET /open/info) and paces under it; with no change, none.
REFUSALS_PER_CHANGE = 3


class Violation(AssertionError):
    """An invariant that did not hold."""


@dataclass
class Sent:
    """A /sms the bridge accepted (or may have: the app died while answering). ``numbers``
    None: the ones its request recorded (a Slack user group's members when it was sent)."""

    text: str
    numbers: tuple[str, ...] | None
    certain: bool


@dataclass
class Inbound:
    """An SMS to the bridge from ``number``, and when 2Chat listed it (time.monotonic)."""

    uuid: str
    at: float
    number: str
    text: str


class Invariants:
    """The checks; mixed into the World, whose steps fill in what they read."""

    slack: SlackStandIn
    twochat: TwoChatStandIn
    database: Database
    sent: list[Sent]
    inbound: list[Inbound]
    calm_since: float  # when the last fault that holds reads up ended
    limit_changes: int  # how often a step changed the 2Chat account's limit

    def accepted(self) -> Counter[tuple[str, str]]:
        """(text, number) -> how many times 2Chat accepted it."""
        return Counter(
            (str(r.body.get("text")), str(r.body.get("to_number")))
            for r in list(self.twochat.records)
            if r.status == 202
        )

    def check_always(self) -> None:
        """I1 (at most one), I5, I2, I3 (in time), I6 and rejections: after every step."""
        accepted = self.accepted()
        twice = [key for key, n in accepted.items() if n > 1 and "Acked by" not in key[0]]
        if twice:
            raise Violation(f"I1/I5: texted more than once: {twice}")
        rejected = {
            text
            for (text,) in self.database.rows("SELECT text FROM requests WHERE state = 'rejected'")
        }
        if texted := [key for key in accepted if key[0] in rejected]:
            raise Violation(f"I1: a rejected text was sent: {texted}")
        self._check_ladders()
        self._check_reads(time.monotonic())
        allowed = REFUSALS_PER_CHANGE * self.database.processes * self.limit_changes
        if len(self.twochat.refused) > allowed:
            raise Violation(
                f"I6: 2Chat answered 429 {len(self.twochat.refused)} times "
                f"({self.limit_changes} limit changes): {self.twochat.refused}"
            )

    def _check_ladders(self) -> None:
        """I2: one ladder per page, and no tier after its ack."""
        codes = self.database.rows(
            "SELECT code, COUNT(*) FROM escalations GROUP BY code HAVING COUNT(*) > 1"
        )
        late = self.database.rows(
            "SELECT t.escalation_id FROM escalation_steps t JOIN escalation_steps a "
            "ON a.escalation_id = t.escalation_id AND a.kind = 'ack' "
            "WHERE t.kind = 'tier' AND t.id > a.id"
        )
        if codes:
            raise Violation(f"I2: several ladders share a reply code: {codes}")
        if late:
            raise Violation(f"I2: a tier fired after its page was acked: {late}")

    def _check_reads(self, now: float) -> None:
        """I3: every inbound SMS has been read within two poll intervals of its arrival (or
        of the calm after the last fault)."""
        sends = [record.arrived for record in list(self.twochat.records)]
        per_minute = self.twochat.requests_per_minute
        due = []
        for message in self.inbound:
            since = max(message.at, self.calm_since)
            # Texts competed with the reads: sent since, or within 2Chat's minute before
            # (their calls fill that minute, and polls keep only their floor until it clears).
            busy = any(at >= since - TWOCHAT_WINDOW for at in sends)
            # The conversations a poll at its floor may read before this one's.
            moved = len({m.number for m in self.inbound if m.at >= since - TWOCHAT_WINDOW})
            if now - since > read_within(per_minute, busy, moved):
                due.append(message.uuid)
        if not due:
            return
        read = {uuid for (uuid,) in self.database.rows("SELECT uuid FROM inbound_messages")}
        if unread := [uuid for uuid in due if uuid not in read]:
            when = "ever" if now == float("inf") else "in two poll intervals"
            raise Violation(f"I3: inbound SMS not read {when}: {unread}")

    def check_settled(self) -> None:
        """I1 (exactly one), I3 (all) and I4, once faults stopped and everything settled."""
        self.check_always()
        accepted = self.accepted()
        for sent in self.sent:
            thread = self._thread_of(sent.text)
            if thread is None:
                if sent.certain:
                    raise Violation(f"I4: no request message for {sent.text!r}")
                continue
            for number in sent.numbers or self._recorded_numbers(sent.text):
                said = any(
                    f"({number})" in line and any(mark in line for mark in NOT_SENT_MARKS)
                    for line in thread.splitlines()
                )
                if not accepted[(sent.text, number)] and not said:
                    raise Violation(
                        f"I1/I4: {number} neither texted {sent.text!r} nor told why in the "
                        f"thread:\n{thread}"
                    )
        self._check_reads(float("inf"))  # every one, however late
        self._check_rungs()
        self._check_acted_on()

    def _check_acted_on(self) -> None:
        """I8: every inbound SMS is acted on: a reply code acks a page that texted it to
        that number (late, if the page was handled), the last of a number's STOP and START
        leaves it opted out or not, and any other reply reaches Slack (its thread, or the
        requester in private). (An ack word's
        effect depends on the pages open when it is read, so it is not checked here.)"""
        opted_out = {str(n) for (n,) in self.database.rows("SELECT number FROM opt_outs")}
        # Posted anywhere, or told the requester in private (its response_url) when the
        # thread could not be posted in.
        slack = "\n".join(
            [str(self.slack.latest(post).get("text")) for post in self.slack.posts()]
            + [str(response.get("text")) for response in list(self.slack.responses)]
        )
        last_word: dict[str, str] = {}
        for message in self.inbound:
            if message.text in ("STOP", "START"):
                last_word[message.number] = message.text
            elif CODE.fullmatch(message.text):
                if not self.database.rows(
                    "SELECT 1 FROM escalation_steps t JOIN escalations e "
                    "ON e.id = t.escalation_id WHERE t.kind IN ('ack', 'late_ack') "
                    f"AND e.code = '{message.text}' AND t.actor = '{message.number}'"
                ):
                    raise Violation(
                        f"I8: reply code {message.text} from {message.number} acked no page"
                    )
            elif message.text != "ok" and message.text not in slack:
                raise Violation(f"I8: reply {message.text!r} never reached Slack")
        if wrong := {n: w for n, w in last_word.items() if (n in opted_out) != (w == "STOP")}:
            raise Violation(f"I8: opt-outs not as the last STOP or START said: {wrong}")

    def _check_rungs(self) -> None:
        """I7: every ladder runs to its end (none is left open once settled), and a tier
        that texted nobody says so, and why, in its page's thread."""
        if stuck := self.database.rows("SELECT id FROM escalations WHERE state = 'open'"):
            raise Violation(f"I7: ladders still open once everything settled: {stuck}")
        for escalation, channel, thread, tier in self.database.rows(
            "SELECT e.id, e.channel_id, e.thread_ts, t.tier FROM escalation_steps t "
            "JOIN escalations e ON e.id = t.escalation_id "
            "WHERE t.kind = 'tier' AND t.request_id IS NULL"
        ):
            notes = [
                str(reply.get("text"))
                for reply in self.slack.thread_replies(str(channel))
                if reply.get("thread_ts") == thread
            ]
            if not any(note.startswith(f"*Tier {int(tier) + 1}") for note in notes):
                raise Violation(
                    f"I7: tier {int(tier) + 1} of {escalation} texted nobody without a word "
                    f"in its thread: {notes}"
                )

    def _recorded_numbers(self, text: str) -> list[str]:
        """Whom the request for ``text`` recorded as its recipients."""
        return [
            str(number)
            for (number,) in self.database.rows(
                "SELECT s.number FROM sends s JOIN requests r ON r.id = s.request_id "
                f"WHERE r.text = '{text}'"
            )
        ]

    def _thread_of(self, text: str) -> str | None:
        """Everything said in the thread of the request message quoting ``text``, or None
        when there is none. There is one at most: a process that dies before it stored the
        message's ts leaves it to the process that takes over, which must not post a
        second one (a stray that never says what happened)."""
        posts = self.slack.posts(GENERAL)
        threads = [
            post["_ts"]
            for post in posts
            if not post.get("thread_ts") and str(post.get("text")).endswith(f"> {text}")
        ]
        if len(threads) > 1:
            raise Violation(f"I4: {len(threads)} request messages for {text!r}: {threads}")
        if not threads:
            return None
        return "\n".join(
            str(self.slack.latest(reply).get("text"))
            for reply in posts
            if reply.get("thread_ts") == threads[0]
        )
