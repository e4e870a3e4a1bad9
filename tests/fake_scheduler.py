"""A stand-in for sbatch and sacct (records packs, answers states) and the study the tests submit to
it; the integration tests use the real SLURM."""

from __future__ import annotations

import threading
from typing import Any

from cluster.executors.slurm import SlurmExecutor
from jobs.pack import TaskPack

# the study of these tests (and of test_cli_submit, test_jobs_overrides): write_study(**FAKE)
FAKE: dict[str, Any] = {"name": "fake", "methods": ["regular", "robust"], "radii": [0.1],
                        "trials": 3, "training": {"epochs": 1},
                        "cluster": {"max_pack": 2, "time_limit_min": 100000}}


class FakeScheduler:
    """Stands in for sbatch (records packs) and sacct (answers from a dict)."""

    def __init__(self) -> None:
        self.next_id = 100
        self.submitted: list[list[TaskPack]] = []
        self.states: dict[str, str] = {}
        self.sacct_calls = 0
        self.lock = threading.Lock()

    def submit(self, executor: SlurmExecutor, packs: list[TaskPack]) -> list[str]:
        with self.lock:
            array = str(self.next_id)
            self.next_id += 1
            self.submitted.append(list(packs))
        return [f"{array}_{i}" for i in range(len(packs))]

    def sacct(self, args: list[str]) -> str:
        self.sacct_calls += 1
        arrays = set(args[args.index("-j") + 1].split(","))
        return "".join(f"{job}|{state}\n" for job, state in self.states.items()
                       if job.split("_")[0] in arrays)

    def keys(self, index: int = -1) -> list[str]:
        return [k for pack in self.submitted[index] for k in pack.keys]

