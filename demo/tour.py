"""The tour: what a team sees in Slack in its first minutes with the bridge, step by step.

Each step does what a person would (a slash command, a mention, a click, an SMS reply),
waits for the bridge's answer to reach Slack, then shows everything Slack received.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from demo.screen import body_lines, render
from demo.workspace import APPROVALS, INCIDENT, Shown, Workspace, buttons

ALICE, BOB = "+447700900123", "+447700900456"
REPLY_CODE = re.compile(r"Reply ([A-Z][0-9]{1,3}) to ack")
Say = Callable[[str], None]


def has(*words: str) -> Callable[[Shown], bool]:
    """Whether a message reads, as Slack shows it, with all of ``words`` in it."""
    return lambda shown: all(word in "\n".join(body_lines(shown)) for word in words)


class Tour:
    """The steps, in order; each waits for its outcome, so a step that fails stops the tour
    with what it waited for."""

    def __init__(self, workspace: Workspace, say: Say) -> None:
        self.workspace = workspace
        self.say = say
        self.number = 0

    def step(self, title: str, doing: str) -> None:
        self.number += 1
        self.say("")
        self.say(f"── {self.number}. {title} " + "─" * max(0, 70 - len(title)))
        self.say(f"   {doing}")
        self.say("")

    def show(self) -> None:
        for shown in self.workspace.news():
            self.say(render(shown))

    def sms_to(self, number: str) -> str:
        """The last SMS 2Chat was asked to send to ``number``."""
        sends = [s for s in list(self.workspace.twochat.sends) if s.get("to_number") == number]
        return str(sends[-1].get("text")) if sends else ""

    def help(self) -> None:
        self.step("Help", "@U0DEV1 types `/sms help` in #general")
        self.workspace.command("help", "U0DEV1")
        self.workspace.wait_for_shown(lambda s: s.kind == "private", "the help text")
        self.show()

    def send(self) -> None:
        self.step("A text", "@U0DEV1: `/sms alice Deploy finished, all green`")
        self.workspace.command("alice Deploy finished, all green", "U0DEV1")
        self.workspace.wait_for_shown(has("message_id"), "the 2Chat message_id in the thread")
        self.show()

    def refusal(self) -> None:
        self.step("A refusal", "@U0DEV1 tries a number the policy does not allow them")
        self.workspace.command("+12025550143 hello", "U0DEV1")
        self.workspace.wait_for_shown(lambda s: s.kind == "private", "the refusal")
        self.show()

    def page(self) -> str:
        """A page to the on-call group; returns its reply code."""
        self.step("A group page", "@U0DEV1 in #incident: `@sms-bridge page DB primary is down`")
        self.workspace.mention("page DB primary is down", "U0DEV1", INCIDENT)
        code = self.workspace.wait_for(lambda: REPLY_CODE.search(self.sms_to(ALICE)), "the SMS")
        self.workspace.wait_for_shown(has("all sent"), "the page's outcome")
        self.workspace.wait_for_shown(has("Tier 1 at", "alice, bob"), "the board naming who")
        self.show()
        self.say(f"\n    (the SMS alice got: “{self.sms_to(ALICE)}”)")
        return str(code[1])

    def approval(self) -> None:
        self.step("An approval", "@U0INTERN: `/sms bob Can you cover my shift tonight?`")
        self.workspace.command("bob Can you cover my shift tonight?", "U0INTERN")
        request = self.workspace.wait_for_shown(
            lambda s: s.channel == APPROVALS and bool(buttons(s)), "the approval request"
        )
        self.show()
        self.say("\n    @U0ADMIN presses Approve")
        (approve,) = [button for button in buttons(request) if button.label == "Approve"]
        self.workspace.click("U0ADMIN", approve.action_id, approve.value, APPROVALS)
        self.workspace.wait_for_shown(
            lambda s: s.channel == APPROVALS and s.thread and "message_id" in s.text,
            "the approved text's message_id",
        )
        self.workspace.wait_for_shown(
            lambda s: s.kind == "private" and "message_id" in s.text, "the requester's copy"
        )
        self.show()

    def reply(self) -> None:
        self.step("An SMS reply", "bob answers the text by SMS: “Sure, I can cover”")
        self.workspace.sms_from(BOB, "Sure, I can cover")
        self.workspace.wait_for_shown(has("Sure, I can cover"), "bob's reply in the thread")
        self.show()

    def ack(self, code: str) -> None:
        self.step("An ack by code", f"alice answers the page by SMS with its code: “{code}”")
        self.workspace.sms_from(ALICE, code)
        self.workspace.wait_for_shown(has("Acked by alice"), "the board saying alice acked")
        self.workspace.wait_for(lambda: "Acked by" in self.sms_to(BOB), "bob's all-clear SMS")
        self.workspace.wait_for_shown(has(BOB, "message_id"), "the all-clear's message_id")
        self.show()
        self.say(f"\n    (the SMS bob got: “{self.sms_to(BOB)}”)")


def run_tour(workspace: Workspace, say: Say = print) -> None:
    """Play the tour: help, a text, a refusal, a page, an approval, a reply, an ack."""
    tour = Tour(workspace, say)
    tour.help()
    tour.send()
    tour.refusal()
    code = tour.page()
    tour.approval()
    tour.reply()
    tour.ack(code)
