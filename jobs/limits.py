"""Bounds on the size of a study's grid, checked while the study file is read.

Beyond them a study is a typo (`trials = 10_000_000`), not a plan: the limit is checked with
arithmetic on the counts before any trial is listed, so an absurd grid is refused at once instead
of hanging `plan`, `submit` or `status`.
"""

from __future__ import annotations

MAX_TRIALS = 100_000        # trials per (method, radius)
MAX_RADII = 1_000           # radii of one study
MAX_GRID_TRIALS = 100_000   # trials of one study in all (the paper's study has a few thousand)


def grid_size(n_regular: int, n_other: int, n_radii: int, trials: int,
              regular_per_radius: bool) -> int:
    """How many trials `jobs.grid.expand` lists, without listing them."""
    per_regular = n_radii if regular_per_radius else 1
    return (n_regular * per_regular + n_other * n_radii) * trials
