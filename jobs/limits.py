"""Bounds on the size of a study's grid, checked while the study file is read.

Beyond them a study is a typo (`trials = 10_000_000`), not a plan: the limit is checked with
arithmetic on the counts before any trial is listed, so an absurd grid is refused at once instead
of hanging `plan`, `submit` or `status`.
"""

from __future__ import annotations

MAX_TRIALS = 100_000        # trials per (method, radius)
MAX_RADII = 1_000           # radii of one study
MAX_GRID_TRIALS = 100_000   # trials of one study in all (the paper's study has a few thousand)

# The cluster profile: beyond these a value is a typo (a time limit of 10^12 minutes reaches
# sbatch as --time=1000000000000 where the partition sets no MaxTime), not a request.
MAX_TIME_LIMIT_MIN = 525_600     # a year
MAX_MEM_GB = 65_536.0            # 64 TiB: more than any node has
MAX_GPU_MEM_GB = 4_096.0         # more than any GPU has
MAX_ARRAY_SIZE = 4_000_001       # SLURM's own ceiling on MaxArraySize
MAX_GPUS_PER_NODE = 1_024
MAX_PACK = 10_000                # trials per task
MAX_REQUEUE = 10_000
MAX_SIGNAL_DELAY_S = 86_400


def grid_size(n_regular: int, n_other: int, n_radii: int, trials: int,
              regular_per_radius: bool) -> int:
    """How many trials `jobs.grid.expand` lists, without listing them."""
    per_regular = n_radii if regular_per_radius else 1
    return (n_regular * per_regular + n_other * n_radii) * trials
