"""What every executor does: submit one array of task packs; blocking ones then run it."""

from __future__ import annotations

import abc
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import submitit
from tqdm import tqdm

from cluster.concurrency import ArrayOptions
from cluster.slurm_info import SlurmInfo
from cluster.task import TrainTask
from jobs.markers import read_done
from jobs.paths import Paths
from jobs.study import Study
from jobs.task import TaskPack


class Backend(abc.ABC):
    name: ClassVar[str]
    blocking: ClassVar[bool] = False     # runs to the end in `finish` (local, debug)
    reraise: ClassVar[bool] = False      # tasks re-raise a trial's error (debug: pdb)
    trainer_progress: ClassVar[bool] = False

    def __init__(self, study: Study, paths: Paths) -> None:
        self.study, self.paths = study, paths

    def check(self) -> None:  # noqa: B027 (optional hook: most executors run anywhere)
        """Raise ClusterError when this executor cannot run here (before anything is written)."""

    def cluster_info(self) -> SlurmInfo | None:
        """What the scheduler offers (partitions, nodes, MaxArraySize); None: nothing known."""
        return None

    @abc.abstractmethod
    def submit(self, packs: Sequence[TaskPack], options: ArrayOptions | None = None) -> list[str]:
        """Submit one array (task i = packs[i]); return the job id of each task. `options`
        (time limit, throttle, dependencies) matter to schedulers; blocking executors run
        `local_parallelism` tasks at once, one submission at a time."""

    def finish(self, progress: bool = True) -> list[str]:
        """Blocking executors run what was submitted; return one line per failed task."""
        del progress
        return []


class BlockingBackend(Backend):
    """Runs the submitted packs on this machine, `parallelism` at a time, with a progress bar."""

    blocking = True
    parallelism: int = 1

    def __init__(self, study: Study, paths: Paths) -> None:
        super().__init__(study, paths)
        self._queue: list[tuple[str, TaskPack]] = []

    @abc.abstractmethod
    def executor(self) -> submitit.Executor:
        """The submitit executor that runs one task."""

    def submit(self, packs: Sequence[TaskPack], options: ArrayOptions | None = None) -> list[str]:
        del options
        label = f"{self.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        ids = [f"{label}_{i}" for i in range(len(packs))]
        self._queue.extend(zip(ids, packs, strict=True))
        return ids

    def finish(self, progress: bool = True) -> list[str]:
        executor = self.executor()
        trials = [t for _, pack in self._queue for t in pack.trials]
        waiting = list(self._queue)
        running: list[tuple[str, Any]] = []
        errors: list[str] = []
        bar = tqdm(total=len(trials), unit="trial", disable=not progress, desc=self.study.name,
                   dynamic_ncols=True)
        previous = _exit_on_sigterm()
        try:
            while waiting or running:
                while waiting and len(running) < self.parallelism:
                    job_id, pack = waiting.pop(0)
                    running.append((job_id, executor.submit(TrainTask(pack))))
                for job_id, job in list(running):
                    try:
                        finished = job.done()
                    except Exception as exc:  # debug jobs raise the task's error here
                        running.remove((job_id, job))
                        errors.append(_describe(job_id, exc))
                        continue
                    if finished:
                        running.remove((job_id, job))
                        errors.extend(_error_line(job_id, job))
                done = sum(read_done(self.paths, t, retries=0) is not None for t in trials)
                bar.update(done - bar.n)
                bar.set_postfix(failed=len(errors), refresh=False)
                if running:
                    time.sleep(0.5)
        except BaseException:
            for _, job in running:
                job.cancel(check=False)
            raise
        finally:
            bar.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self._queue.clear()
        return errors


def _exit_on_sigterm() -> Any:
    """SIGTERM becomes SystemExit while tasks run here, so they are cancelled, not orphaned."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        del frame
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, handler)


def _error_line(job_id: str, job: Any) -> list[str]:
    try:
        exc = job.exception()
    except Exception as err:  # the job died without a result (killed)
        exc = err
    return [] if exc is None else [_describe(job_id, exc)]


def _describe(job_id: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"task {job_id}: {type(exc).__name__}: {text[-1] if text else ''}"
