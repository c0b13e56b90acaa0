"""py-spy around a benchmark run: starting and stopping the samplers, and reading what
they found into the summary bench/profile.txt holds."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import APP_ROOT, ROOT


def py_spy() -> str | None:
    """py-spy from the venv (``pip install py-spy``) or the PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return shutil.which("py-spy", path=path)


# Three samplers of the same run: where the CPU goes (only threads holding the GIL), as a
# flame graph and as stacks to summarise, and where the busy threads wait (idle excluded),
# which also shows time blocked in the database. --nonblocking: no pausing of the app.
SAMPLERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("flamegraph", "profile.svg", ("--gil",)),
    ("raw", "cpu.folded", ("--gil",)),
    ("raw", "busy.folded", ()),
)


def start_py_spy(pid: int, work: Path) -> list[subprocess.Popen[bytes]]:
    """Start the samplers on the app; outputs go to ``work`` (the SVG is copied later)."""
    exe = py_spy()
    if exe is None:
        return []
    spies = []
    for fmt, name, flags in SAMPLERS:
        command = [exe, "record", "--pid", str(pid), "--rate", "200", "--nonblocking", *flags]
        spies.append(
            subprocess.Popen(
                [*command, "--format", fmt, "-o", str(work / name)],
                stdout=subprocess.DEVNULL,
                stderr=(work / f"py-spy-{name}.log").open("wb"),
            )
        )
    time.sleep(1.0)  # attaching takes a moment
    return spies


def stop_py_spy(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    for spy in spies:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short_file(path: str) -> str:
    """``…/site-packages/aiohttp/client.py`` -> ``aiohttp/client.py``; bot/ stays bot/."""
    for marker in ("site-packages/", "/lib/python3.11/", str(APP_ROOT) + "/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


@dataclass
class Profile:
    """Sample counts from py-spy's raw (folded) stacks."""

    total: int = 0
    self_time: Counter[str] = field(default_factory=Counter)
    by_package: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)  # of bot/ functions only

    @classmethod
    def read(cls, folded: Path) -> Profile:
        profile = cls()
        for line in folded.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            profile.total += count
            frames = []
            for raw in stack.split(";"):
                match = _FRAME.match(raw)
                frames.append(
                    f"{match['func']} ({short_file(match['file'])})" if match else raw.strip()
                )
            leaf = frames[-1]
            profile.self_time[leaf] += count
            module = leaf.rsplit("(", 1)[-1].rstrip(")")
            profile.by_package[module.split("/")[0].removesuffix(".py")] += count
            for frame in set(frames):
                if "(bot/" in frame and "bot/__main__.py" not in frame:
                    profile.inclusive[frame] += count
        return profile

    def lines(self, counter: Counter[str], top: int) -> list[str]:
        return [f"  {n / self.total:6.1%}  {name}" for name, n in counter.most_common(top)]


def summarise_profile(work: Path, top: int = 15) -> str:
    """The CPU view (self time by package and function, inclusive time of bot/ functions)
    and the busy-thread view (inclusive time of bot/ functions, database waits included)."""
    cpu, busy = Profile.read(work / "cpu.folded"), Profile.read(work / "busy.folded")
    if not cpu.total:
        return "py-spy took no samples"
    return "\n".join(
        [
            f"CPU: {cpu.total} samples of app threads holding the GIL (py-spy --gil)",
            "",
            "Self time by package (the leaf frame's module):",
            *cpu.lines(cpu.by_package, top),
            "",
            "Self time by function:",
            *cpu.lines(cpu.self_time, top),
            "",
            "Inclusive time of bot/ functions:",
            *cpu.lines(cpu.inclusive, top),
            "",
            f"Busy threads: {busy.total} samples of non-idle app threads, the database "
            "threads' waits on SQLite/PostgreSQL included",
            "",
            "Inclusive time of bot/ functions:",
            *busy.lines(busy.inclusive, top),
        ]
    )
