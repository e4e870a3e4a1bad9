"""The entry point of one task (an array element, a local process or an in-process call).

A task trains the trials of its pack that are not DONE; trials of one method, radius and settings
train together as one batched model (`trainers.loop.train_pack`). Each trial resumes from its own
checkpoint on disk, so a requeued or resubmitted task continues where the last one stopped. A
trial whose spec is invalid, or a batch that raises, gets FAILED markers and the task goes on
with the rest; the task then raises `TaskFailed` so the scheduler records a failure too.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.atomic import StorageError, atomic_write_json, remove_stale_temps, sha256_file
from jobs.grid import TrialSpec
from jobs.heartbeat import Heartbeat
from jobs.markers import read_done, write_done, write_failed
from jobs.paths import Paths
from trainers.spec import pack_key


@dataclass(frozen=True)
class TaskPack:
    """What one task trains: picklable, holds no training state (that lives on disk)."""

    root: str
    trials: tuple[TrialSpec, ...]
    device: str = "auto"
    data_dir: str | None = None   # None: $DROSWEEP_DATA_DIR on the node, else the user cache
    progress: bool = False        # the trainer's progress bar (local runs)
    reraise: bool = False         # re-raise a trial's error after marking it (debug: pdb)
    threads: int | None = None    # torch's CPU threads in the task (cpus_per_task); None: all
    lines: bool = False           # progress lines on stdout (a task's log: cluster/preemptible.py)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.trials)


class TrialOutcome(enum.StrEnum):
    DONE = "done"          # trained (or found DONE) and marked
    SKIPPED = "skipped"    # already DONE before this task
    STOPPED = "stopped"    # asked to stop: checkpoint written, not finished
    FAILED = "failed"      # raised: FAILED marker written


class TrainingDiverged(RuntimeError):
    """A trial finished with a loss that is not a number (NaN or infinite): its model is no
    result, and it is marked failed rather than done."""


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


def run_pack(pack: TaskPack, *, should_stop: Callable[[], bool] | None = None) -> TaskResult:
    """Train every trial of the pack that is not DONE; never raises for a trial's error
    (unless `pack.reraise`)."""
    paths = Paths(pack.root)
    outcome: dict[str, TrialOutcome] = {}
    batches: dict[tuple[object, ...], list[TrialSpec]] = {}
    for trial in pack.trials:
        if read_done(paths, trial) is not None:
            outcome[trial.key] = TrialOutcome.SKIPPED
            continue
        for path in (paths.spec_file(trial), paths.done(trial), paths.failed(trial)):
            remove_stale_temps(path)  # left by a task killed mid-write; the trainer does its own
        try:
            trial.train_spec.validate()
            atomic_write_json(paths.spec_file(trial), {"key": trial.key, "trial": trial.trial,
                                                       "spec": trial.train_spec.to_dict()})
        except Exception as exc:
            outcome[trial.key] = _fail(paths, [trial], exc, pack.reraise)
            continue
        batches.setdefault(pack_key(trial.train_spec), []).append(trial)
    with Heartbeat(paths, [t.key for ts in batches.values() for t in ts]) as beat:
        for trials in batches.values():
            if should_stop is not None and should_stop():
                break
            beat.training(t.key for t in trials)
            ran = _run_batch(paths, trials, pack, should_stop)
            outcome.update(ran)
            beat.ended(k for k, o in ran.items() if o is not TrialOutcome.STOPPED)
    return TaskResult(tuple((t.key, outcome.get(t.key, TrialOutcome.STOPPED))
                            for t in pack.trials))


def run_task(pack: TaskPack, *, should_stop: Callable[[], bool] | None = None) -> TaskResult:
    """`run_pack`, raising `TaskFailed` at the end when a trial failed."""
    result = run_pack(pack, should_stop=should_stop)
    if result.failed:
        raise TaskFailed(f"{len(result.failed)} of {len(pack.trials)} trial(s) failed: "
                         f"{', '.join(result.failed)} (see their FAILED.json)")
    return result


def _fail(paths: Paths, trials: list[TrialSpec], exc: Exception, reraise: bool) -> TrialOutcome:
    for trial in trials:
        write_failed(paths, trial, exc)
    if reraise:
        raise exc
    return TrialOutcome.FAILED


class PackStopped(RuntimeError):
    """A trial of a pack that stopped because another trial's write failed."""


def _writer(paths: Paths, trials: list[TrialSpec], exc: Exception) -> TrialSpec | None:
    """The trial whose file a failed write (`StorageError`, e.g. a full disk) named, if any."""
    name = exc.path if isinstance(exc, StorageError) else None
    if not name:
        return None
    for trial in trials:
        if Path(name).parent == paths.trial_dir(trial):
            return trial
    return None


def _fingerprint(trial: TrialSpec, data_dir: str | None,
                 fingerprint: Callable[..., dict[str, str]]) -> dict[str, str] | None:
    """The data files the batch is about to read (a batch shares its data set and settings:
    `pack_key`), hashed before training; None when one cannot be read (the loading then fails
    with the reason)."""
    spec = trial.train_spec
    try:
        return fingerprint(spec.dataset, spec.data_options, data_dir)
    except OSError:
        return None


def _run_batch(paths: Paths, trials: list[TrialSpec], pack: TaskPack,
               should_stop: Callable[[], bool] | None) -> dict[str, TrialOutcome]:
    from trainers.datasets.fingerprint import data_fingerprint
    from trainers.device import cpu_threads, device_model, resolve_device
    from trainers.loop import train_pack  # torch and the methods load only where trials train

    try:
        data_files = _fingerprint(trials[0], pack.data_dir, data_fingerprint)
        with cpu_threads(pack.threads):
            results = train_pack([t.train_spec for t in trials],
                                 [paths.train_paths(t) for t in trials], data_dir=pack.data_dir,
                                 device=pack.device, resume=True, progress=pack.progress,
                                 should_stop=should_stop, lines=pack.lines)
            model_name = device_model(resolve_device(pack.device))
        # train_pack trains the trials that resume from the same step together: that is the pack
        # a trial's wall time was measured in
        together = Counter(r.resumed_from for r in results)
        out: dict[str, TrialOutcome] = {}
        for trial, result in zip(trials, results, strict=True):
            if not result.finished:
                out[trial.key] = TrialOutcome.STOPPED
                continue
            if not math.isfinite(result.final_loss):
                diverged = TrainingDiverged(
                    f"training diverged: final loss {result.final_loss} after {result.steps} "
                    f"steps (lower training.lr or check the data); the model is not marked done")
                write_failed(paths, trial, diverged)
                out[trial.key] = TrialOutcome.FAILED
                continue
            model = paths.model(trial)
            written = model.stat()
            sha = sha256_file(model)
            if result.model_sha256 is not None and sha != result.model_sha256:
                raise RuntimeError(f"{model}: sha256 changed after training (concurrent writer?)")
            write_done(paths, trial, model_sha256=sha, steps=result.steps, epochs=result.epochs,
                       wall_s=result.wall_s, final_loss=result.final_loss,
                       resumed_from=result.resumed_from, precision=result.precision or None,
                       device_model=model_name, pack=together[result.resumed_from],
                       kept_samples=result.kept, model_stat=written, data_files=data_files)
            out[trial.key] = TrialOutcome.DONE
        return out
    except Exception as exc:
        failed = [t for t in trials if read_done(paths, t, retries=0) is None]
        culprit = _writer(paths, failed, exc)
        if culprit is not None and len(failed) > 1:  # each trial's FAILED names its own story
            others = [t for t in failed if t is not culprit]
            _fail(paths, others, PackStopped(f"not finished: its pack stopped when "
                                              f"{culprit.key} could not write its files; "
                                              f"free space and resume"), reraise=False)
            failed = [culprit]
        outcome = _fail(paths, failed, exc, pack.reraise)
        return {t.key: TrialOutcome.DONE if t not in failed else outcome for t in trials}
