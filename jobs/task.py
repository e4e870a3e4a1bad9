"""The entry point of one task (an array element, a local process or an in-process call).

A task trains the trials of its pack one after the other. Each trial resumes from its own
checkpoint on disk, so a requeued or resubmitted task continues where the last one stopped;
trials already DONE are skipped. A trial that raises gets a FAILED marker and the task goes on
with the next one; the task then raises `TaskFailed` so the scheduler records a failure too.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from jobs.grid import TrialSpec
from jobs.markers import read_done, write_done, write_failed
from jobs.paths import Paths
from trainers.atomic import atomic_write_json, sha256_file


@dataclass(frozen=True)
class TaskPack:
    """What one task trains: picklable, holds no training state (that lives on disk)."""

    root: str
    trials: tuple[TrialSpec, ...]
    device: str = "auto"
    data_dir: str | None = None   # None: $DROSWEEP_DATA_DIR on the node, else the user cache

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.trials)


class TrialOutcome(enum.StrEnum):
    DONE = "done"          # trained (or found DONE) and marked
    SKIPPED = "skipped"    # already DONE before this task
    STOPPED = "stopped"    # asked to stop: checkpoint written, not finished
    FAILED = "failed"      # raised: FAILED marker written


@dataclass(frozen=True)
class TaskResult:
    outcomes: tuple[tuple[str, TrialOutcome], ...]

    @property
    def stopped(self) -> bool:
        return any(o is TrialOutcome.STOPPED for _, o in self.outcomes)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(k for k, o in self.outcomes if o is TrialOutcome.FAILED)


class TaskFailed(RuntimeError):
    """Some trials of the pack failed (their FAILED markers hold the tracebacks)."""


def run_pack(pack: TaskPack, *, should_stop: Callable[[], bool] | None = None,
             progress: bool = False) -> TaskResult:
    """Train every trial of the pack that is not DONE; never raises for a trial's error."""
    paths = Paths(pack.root)
    outcomes: list[tuple[str, TrialOutcome]] = []
    for index, trial in enumerate(pack.trials):
        if should_stop is not None and should_stop():
            outcomes.extend((t.key, TrialOutcome.STOPPED) for t in pack.trials[index:])
            break
        if read_done(paths, trial) is not None:
            outcomes.append((trial.key, TrialOutcome.SKIPPED))
            continue
        outcome = _run_trial(paths, trial, pack, should_stop, progress)
        outcomes.append((trial.key, outcome))
        if outcome is TrialOutcome.STOPPED:
            outcomes.extend((t.key, TrialOutcome.STOPPED) for t in pack.trials[index + 1:])
            break
    return TaskResult(tuple(outcomes))


def run_task(pack: TaskPack, *, should_stop: Callable[[], bool] | None = None,
             progress: bool = False) -> TaskResult:
    """`run_pack`, raising `TaskFailed` at the end when a trial failed."""
    result = run_pack(pack, should_stop=should_stop, progress=progress)
    if result.failed:
        raise TaskFailed(f"{len(result.failed)} of {len(pack.trials)} trial(s) failed: "
                         f"{', '.join(result.failed)} (see their FAILED.json)")
    return result


def _run_trial(paths: Paths, trial: TrialSpec, pack: TaskPack,
               should_stop: Callable[[], bool] | None, progress: bool) -> TrialOutcome:
    from trainers.loop import train  # torch and the methods load only where a trial trains

    try:
        atomic_write_json(paths.spec_file(trial), {"key": trial.key, "trial": trial.trial,
                                                   "spec": trial.train_spec.to_dict()})
        result = train(trial.train_spec, paths.train_paths(trial), data_dir=pack.data_dir,
                       device=pack.device, resume=True, progress=progress,
                       should_stop=should_stop)
        if not result.finished:
            return TrialOutcome.STOPPED
        model = paths.model(trial)
        sha = result.model_sha256 or sha256_file(model)
        if sha256_file(model) != sha:
            raise RuntimeError(f"{model}: sha256 changed after training (concurrent writer?)")
        write_done(paths, trial, model_sha256=sha, steps=result.steps, epochs=result.epochs,
                   wall_s=result.wall_s, final_loss=result.final_loss,
                   resumed_from=result.resumed_from)
        return TrialOutcome.DONE
    except Exception as exc:
        write_failed(paths, trial, exc)
        return TrialOutcome.FAILED

