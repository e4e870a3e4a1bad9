"""What every executor does: submit one array of task packs (blocking ones then run it), and
everything after: the states of its jobs, cancelling them, their log files, the script preview,
the device model its tasks get. Each executor is named by the CLI's `--executor`; the rest of the
code asks the executor and never tests its name.

Light on import (status, cancel and logs ask executors too): submitit and tqdm are imported when an
executor submits or runs. Blocking executors (local, debug) share `blocking.BlockingExecutor`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from cluster.concurrency import ArrayOptions
from cluster.errors import ClusterError
from cluster.state_enums import JobState
from jobs.pack import TaskPack
from jobs.paths import Paths
from jobs.study import Study

if TYPE_CHECKING:
    import submitit

    from cluster.array_map import JobFailed
    from cluster.executors.slurm.info import SlurmInfo
    from jobs.study import ClusterProfile

T = TypeVar("T")
R = TypeVar("R")


class Executor(abc.ABC):
    name: ClassVar[str]
    blocking: ClassVar[bool] = False     # runs to the end in `finish` (local, debug)
    reraise: ClassVar[bool] = False      # tasks re-raise a trial's error (debug: pdb)
    trainer_progress: ClassVar[bool] = False

    def __init__(self, study: Study, paths: Paths) -> None:
        self.study, self.paths = study, paths

    def check(self) -> None:  # noqa: B027 (optional hook: most executors run anywhere)
        """Raise ClusterError when this executor cannot run here (before anything is written)."""

    def check_settings(self) -> None:  # noqa: B027 (optional hook: most take any profile)
        """Raise ClusterError when the study's cluster settings do not suit this executor (no
        scheduler call)."""

    def cluster_info(self) -> SlurmInfo | None:
        """What the scheduler offers (partitions, nodes, MaxArraySize); None: nothing known."""
        return None

    @abc.abstractmethod
    def device_model(self, profile: ClusterProfile, info: SlurmInfo | None,
                     device: str | None = None) -> str | None:
        """The device model its tasks train on (what their DONE markers will record; None:
        not known before they run)."""

    def scripts(self, sizes: Sequence[int], options: Sequence[ArrayOptions]
                ) -> tuple[str, ...] | None:
        """What the scheduler would be handed for arrays of `sizes` tasks (the dry-run
        preview); None where nothing is handed to a scheduler."""
        del sizes, options
        return None

    # ---- after the submission: the jobs this executor ran (names from the ledger)

    tracks_jobs: ClassVar[bool] = False   # a scheduler knows the state of its jobs

    def job_states(self, array_ids: Iterable[str], runner: Any = None) -> dict[str, JobState]:
        """The scheduler's state of each job of the arrays (by job id); {} where there is no
        scheduler (heartbeats and markers tell instead). `runner`: the query command, replaced
        in tests."""
        del array_ids, runner
        return {}

    def cancel_jobs(self, job_ids: Sequence[str], runner: Any = None) -> None:
        """Cancel the scheduler's jobs (each checkpoints on the signal it gets)."""
        del runner
        raise ClusterError(f"the {self.name} executor has no jobs to cancel by id "
                           f"({', '.join(job_ids)})")

    def log_files(self, job_id: str) -> list[Path]:
        """The files a task wrote its output to that exist, oldest first."""
        folder = self.paths.logs / self.name / job_id
        found = list(folder.glob("*_log.out")) + list(folder.glob("*_log.err"))
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    @abc.abstractmethod
    def submit(self, packs: Sequence[TaskPack], options: ArrayOptions | None = None) -> list[str]:
        """Submit one array (task i = packs[i]); return the job id of each task. `options`
        (time limit, throttle, dependencies) matter to schedulers; blocking executors run
        `local_parallelism` tasks at once, one submission at a time."""

    @abc.abstractmethod
    def submit_after(self, fn: Callable[..., Any], args: Sequence[Any],
                     after: Sequence[str]) -> str | None:
        """Run `fn(*args)` once every array in `after` (array ids) has ended, whatever became
        of its tasks. Schedulers queue one job depending on the arrays and return its id;
        blocking executors return None and run it in this process at the end of `finish`."""

    def finish(self, progress: bool = True) -> list[str]:
        """Blocking executors run what was submitted; return one line per failed task."""
        del progress
        return []

    def array_executor(self, size: int, job_name: str) -> submitit.Executor:
        """The submitit executor of one array of `size` tasks of other work than training
        (`map_array`), its jobs named `job_name`."""
        del size, job_name
        raise ClusterError(f"the {self.name} executor runs no job arrays of its own (use "
                           f"--executor slurm, or run the work in this process)")

    def map_array(self, fn: Callable[[T], R], items: Sequence[T], *, job_name: str,
                  poll_s: float = 15.0) -> Iterator[tuple[int, R | JobFailed]]:
        """`fn` over `items` as one job array of this executor: `(i, result)`, or `(i,
        JobFailed)` for a task that ended without one, as the jobs end (`cluster.array_map`)."""
        from cluster.array_map import map_array

        return map_array(lambda size: self.array_executor(size, job_name), fn, items, poll_s)
