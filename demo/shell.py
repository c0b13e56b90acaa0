"""Try the bridge by hand: type what a Slack user would, see what Slack would show."""

from __future__ import annotations

from collections.abc import Callable

from demo.screen import CHANNEL_NAMES, render
from demo.workspace import BOT_USER, GENERAL, Workspace, buttons

HELP = """\
  /sms <text>              a slash command: `/sms help`, `/sms alice hello`, `/sms db-oncall hi`
  @sms-bridge <text>       mention the bot, e.g. `@sms-bridge page replica lag` (in #incident)
  sms <from> <text>        an SMS arriving from a contact or number, e.g. `sms alice ok`
  press <button>           press the newest button so labelled, e.g. `press Approve`, `press Ack`
  as <user>                type as another Slack user: U0ADMIN, U0DEV1, U0INTERN (approval), U0LEAD
  in <channel>             type in another channel: general, incident, approvals
  help | quit"""
CHANNELS = {name.lstrip("#"): channel for channel, name in CHANNEL_NAMES.items()}
# How long Slack must stay quiet before a line's outcome is taken as complete.
QUIET_SECONDS = 0.6


class Shell:
    """One person at a Slack keyboard: who they are, where they type."""

    def __init__(self, workspace: Workspace, say: Callable[[str], None] = print) -> None:
        self.workspace = workspace
        self.say = say
        self.user = "U0ADMIN"
        self.channel = GENERAL

    def prompt(self) -> str:
        return f"{self.user} in {CHANNEL_NAMES.get(self.channel, self.channel)}> "

    def handle(self, line: str) -> bool:
        """Act on one typed line and show what Slack showed; False to stop."""
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if word in ("quit", "exit"):
            return False
        if word in ("", "help", "?"):
            self.say(HELP)
            return True
        try:
            self._act(word, rest)
        except (ValueError, KeyError) as exc:
            self.say(f"  ? {exc}")
            return True
        for shown in self.workspace.news(quiet=QUIET_SECONDS):
            self.say(render(shown))
        return True

    def _act(self, word: str, rest: str) -> None:
        workspace = self.workspace
        if word == "/sms":
            workspace.command(rest, self.user, self.channel)
        elif word in ("@sms-bridge", f"<@{BOT_USER}>"):
            workspace.mention(rest, self.user, self.channel)
        elif word == "sms":
            sender, _, text = rest.partition(" ")
            if not text:
                raise ValueError("say who sends and what: sms alice on my way")
            workspace.sms_from(sender, text)
        elif word == "press":
            self._press(rest)
        elif word == "as":
            self.user = rest.upper()
        elif word == "in":
            self.channel = CHANNELS.get(rest.lstrip("#"), rest)
        else:
            raise ValueError(f"not understood: {word!r} (type help)")

    def _press(self, label: str) -> None:
        for shown in reversed(self.workspace.slack.shown):
            for button in buttons(shown):
                if button.label.lower() == label.lower():
                    self.workspace.click(self.user, button.action_id, button.value, shown.channel)
                    return
        raise ValueError(f"no button labelled {label!r} on any message")


def run_shell(workspace: Workspace, read: Callable[[str], str] = input) -> None:
    """Read lines until quit or end of input."""
    shell = Shell(workspace)
    shell.say(HELP)
    while True:
        try:
            line = read(shell.prompt())
        except (EOFError, KeyboardInterrupt):
            shell.say("")
            return
        if not shell.handle(line):
            return
