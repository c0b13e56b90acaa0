"""How long one alert takes to match a catastrophic ``auto_page.match``. ``python -m bench.redos``

``^(a+)+$`` against a run of "a"s that does not match makes a backtracking engine try every
way of splitting the run: Python's ``re`` doubles its time with each extra character (seconds
at 28, and the event loop blocked throughout). The bridge matches alerts with RE2, whose time
grows linearly with the text. Python's ``re`` is timed on short runs only, to show the growth.
"""

from __future__ import annotations

import re
import time

from bot.core.alerts import pattern_matches

PATTERN = "^(a+)+$"


def timed(run: int, search: bool) -> float:
    """Seconds to search "a" * run + "!" with Python's re (``search``) or the bridge's RE2."""
    text = "a" * run + "!"
    compiled = re.compile(PATTERN)
    started = time.perf_counter()
    if search:
        compiled.search(text)
    else:
        pattern_matches(compiled, text)
    return time.perf_counter() - started


def main() -> None:
    for run in (16, 18, 20, 22):
        print(f"python re  {run:>6} chars: {timed(run, search=True) * 1000:10.2f} ms")
    for run in (28, 40, 10_000, 1_000_000):
        print(f"bridge RE2 {run:>6} chars: {timed(run, search=False) * 1000:10.2f} ms")


if __name__ == "__main__":
    main()
