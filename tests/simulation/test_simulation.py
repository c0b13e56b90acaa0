"""A bounded run of the fault simulation in the normal suite: a few seeds of a few dozen
steps (a minute or so). ``make simulate SEEDS=N`` runs many more outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation.world import Step, Violation, draw_steps, run_steps

STEPS = 20


@pytest.mark.app
@pytest.mark.parametrize(
    ("seed", "backend"),
    [(1, "sqlite"), (2, "sqlite"), pytest.param(3, "postgres", marks=pytest.mark.postgres)],
)
def test_every_invariant_holds_through_random_faults(
    seed: int, backend: str, tmp_path: Path
) -> None:
    """One process on SQLite; two processes on one Postgres database, which is also cut."""
    steps = draw_steps(seed, STEPS)
    try:
        run_steps(seed, steps, tmp_path, backend)
    except Violation as violation:
        pytest.fail(
            f"seed {seed} ({backend}): {violation}\nsteps: {', '.join(map(str, steps))}\n"
            "replay and shrink: python -m tests.simulation "
            f"--seed {seed} --steps {STEPS} --backend {backend}"
        )


def test_a_seed_draws_the_same_steps_every_time() -> None:
    assert draw_steps(7, 30) == draw_steps(7, 30)
    assert draw_steps(7, 30) != draw_steps(8, 30)
    assert all(isinstance(step, Step) for step in draw_steps(7, 30))
