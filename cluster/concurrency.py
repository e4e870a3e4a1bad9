"""One concurrency cap for a whole study: `cluster.max_running` tasks at once, all arrays together.

SLURM throttles one array at a time (`--array=0-N%P`); P per array would let a study with
several arrays (more tasks than MaxArraySize, or a `resume` while earlier arrays still run) hold
P × arrays GPUs. So a submission's arrays are scheduled as follows:

- The study's live tasks (running or pending, from the ledger and sacct) count against the cap,
  whatever their own throttle (an upper bound: their number only falls).
- The first new array gets the slots left (`max_running` − live tasks). With no slot left it
  waits for the live arrays (`--dependency=afterany:…`) and then gets the whole cap.
- Every further array waits for the previous new array and the live ones, then gets the whole
  cap: arrays run one after another, never side by side.

The price of chaining is the tail of each array (its last tasks running while slots stand idle);
tasks are ordered longest first, and arrays split only beyond MaxArraySize (the paper's study is
one array), so it is small. Splitting the cap between arrays running side by side would leave a
finished array's share idle for the rest of the study, and giving each its own cap is not a cap.
Each task holds `gpus_per_task` GPUs, so the cap is GPUs ÷ gpus_per_task (GPUs with the default
of one GPU per task); the trials of a pack train at once on the task's device.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SLURM_ID = re.compile(r"^\d+(_\d+)?$")


@dataclass(frozen=True)
class ArrayOptions:
    """How one array is submitted: its time limit, its throttle and what it waits for."""

    time_limit_min: int
    max_running: int
    after: tuple[str, ...] = ()         # array ids it starts after (`afterany`)


def schedule(arrays: int, max_running: int, live_job_ids: Iterable[str]
             ) -> list[tuple[int, tuple[str, ...], bool]]:
    """(throttle, live arrays to wait for, wait for the previous array) for each new array.
    Live tasks that are not SLURM jobs (a local run) hold no cluster slot and are left out."""
    live = {j for j in live_job_ids if _SLURM_ID.match(j)}
    live_arrays = tuple(sorted({j.split("_")[0] for j in live}))
    free = max_running - len(live)
    out: list[tuple[int, tuple[str, ...], bool]] = []
    for i in range(arrays):
        if i > 0:
            out.append((max_running, live_arrays, True))
        elif free >= 1:
            out.append((free, (), False))
        else:
            out.append((max_running, live_arrays, False))
    return out
