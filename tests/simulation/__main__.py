"""``python -m tests.simulation``: run seeds of the fault simulation (``make simulate``).

python -m tests.simulation --seeds 500            # seeds 1..500
python -m tests.simulation --seed 42 --steps 30   # replay one seed
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.simulation.world import Step, Violation, draw_steps, run_steps, shrink


class Broken(Exception):
    """The run could not go on for a reason no invariant covers (an app process that could
    not start, say because another test cut every connection to the shared Postgres)."""


# Where a failing run's app logs and database are kept, one directory per seed.
KEPT = Path(tempfile.gettempdir()) / "sms-bridge-simulation"


def fails(seed: int, steps: list[Step], backend: str) -> Violation | None:
    """The violation ``steps`` end in, or None when every invariant held; Broken when the
    run could not finish. A failing run's directory (the apps' logs) is kept in ``KEPT``."""
    with tempfile.TemporaryDirectory(prefix=f"sim{seed}-") as tmp:
        try:
            run_steps(seed, steps, Path(tmp), backend)
        except Violation as violation:
            kept = KEPT / f"seed-{seed}-{len(steps)}-steps"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(tmp, kept)
            violation.add_note(f"the apps' logs: {kept}")
            return violation
        except Exception as exc:
            raise Broken(f"{type(exc).__name__}: {str(exc)[-500:]}") from exc
    return None


def _still_fails(seed: int, backend: str, steps: list[Step]) -> bool:
    try:
        return fails(seed, steps, backend) is not None
    except Broken:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds to run")
    parser.add_argument("--first", type=int, default=1, help="the first seed")
    parser.add_argument("--seed", type=int, help="run this one seed only")
    parser.add_argument("--steps", type=int, default=20, help="steps per seed")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="one process on SQLite, or two on one Postgres database (with database cuts)",
    )
    parser.add_argument(
        "--shrink-seconds", type=float, default=600, help="time to look for a shorter failure"
    )
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    failed: list[int] = []
    broken: list[int] = []
    for seed in seeds:
        started = time.monotonic()
        steps = draw_steps(seed, args.steps)
        try:
            violation = fails(seed, steps, args.backend)
        except Broken as exc:
            print(f"seed {seed}: BROKEN (not a violation): {exc}", flush=True)
            broken.append(seed)
            continue
        took = time.monotonic() - started
        if violation is None:
            print(f"seed {seed}: ok ({len(steps)} steps, {took:.0f}s)", flush=True)
            continue
        notes = "; ".join(getattr(violation, "__notes__", ()))
        print(f"seed {seed}: FAILED: {violation} ({notes})", flush=True)
        still_fails = functools.partial(_still_fails, seed, args.backend)
        shortest = shrink(steps, still_fails, args.shrink_seconds)
        print(f"seed {seed}: the shortest failing steps found ({len(shortest)}):")
        for step in shortest:
            print(f"  {step}")
        print(
            f"replay: python -m tests.simulation --seed {seed} --steps {args.steps} "
            f"--backend {args.backend}",
            flush=True,
        )
        failed.append(seed)
    passed = len(seeds) - len(failed) - len(broken)
    print(
        f"{passed} of {len(seeds)} seeds passed; failed: {failed or 'none'}; "
        f"could not finish: {broken or 'none'}"
    )
    return 1 if failed or broken else 0


if __name__ == "__main__":
    sys.exit(main())
