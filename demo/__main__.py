"""``python -m demo`` (``make demo``): the tour, then, at a terminal, a prompt to try more.

``--shell`` goes straight to the prompt; ``--no-shell`` stops after the tour.
"""

from __future__ import annotations

import argparse
import sys
import time

from demo.shell import run_shell
from demo.tour import run_tour
from demo.workspace import running_workspace

INTRO = """\
sms-bridge demo: the real app (python -m bot, SQLite) against local stand-ins of Slack and
2Chat on 127.0.0.1 — no credentials, no network, no SMS sent. The policy is
config/bridge.yaml plus an escalation ladder on #incident and reply polling.
Below is what Slack would show, step by step."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--shell", action="store_true", help="skip the tour, go to the prompt")
    mode.add_argument("--no-shell", action="store_true", help="stop after the tour")
    args = parser.parse_args(argv)
    print(INTRO, flush=True)
    started = time.monotonic()
    with running_workspace() as workspace:
        print(f"(the app is up after {time.monotonic() - started:.1f} s)", flush=True)
        if not args.shell:
            try:
                run_tour(workspace)
            except AssertionError as exc:  # a step's outcome never reached Slack
                log = workspace.app.log().splitlines()[-20:]
                print(f"\nThe tour stopped: {exc}\nThe app's last log lines:", *log, sep="\n")
                return 1
            print(f"\nThe tour took {time.monotonic() - started:.1f} s.", flush=True)
        if args.shell or (not args.no_shell and sys.stdin.isatty()):
            print("\nNow try it yourself (the same workspace; quit or Ctrl-D to stop):")
            run_shell(workspace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
