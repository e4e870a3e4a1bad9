"""Submit and resume: plan the trials that need training and hand them to an executor.

Both submit exactly the trials with no DONE marker and no live job, under the study's lock, so
two concurrent calls never double-submit and a second call right after the first submits
nothing. Everything is validated (executor available, root writable, same study at the root,
data present) before the first byte is written. `submit` freezes the study file into the root;
`resume` requires it there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock

from cluster import ledger, submit_lock
from cluster.checks import check_submission
from cluster.concurrency import ArrayOptions, schedule
from cluster.errors import ClusterError
from cluster.executors import get_executor
from cluster.executors.base import Executor
from cluster.executors.slurm.sacct import SacctRunner, run_sacct
from cluster.plan_context import PlanContext, context
from cluster.planner import Plan, plan
from cluster.select import ALL, Selection
from cluster.state_enums import TrialState
from cluster.status import StudyStatus, study_status
from cluster.trust import check_root_trusted, restrict
from common.atomic import atomic_write_bytes, atomic_write_text
from jobs.commands import study_command
from jobs.errors import StudyError
from jobs.frozen import check_frozen, to_freeze, union_text
from jobs.grid import TrialSpec, expand
from jobs.pack import TaskPack
from jobs.paths import Paths, check_root_writable
from jobs.study import Study

LOCK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SubmitResult:
    executor: str
    plan: Plan                       # of the trials submitted (empty when nothing to do)
    already_done: int
    already_live: int
    job_ids: tuple[str, ...]
    array_ids: tuple[str, ...]
    errors: tuple[str, ...]          # blocking executors: one line per failed task
    dry_run: bool
    chained_job: str | None = None   # the job queued after the arrays (`then`), if any
    options: tuple[ArrayOptions, ...] = ()  # per array: time limit, throttle, dependencies
    changed: tuple[str, ...] = ()    # DONE trials whose model file changed: neither submitted
    #                                  nor counted done (`status --verify`, then resume)
    ran_by: Executor | None = field(default=None, repr=False, compare=False)  # that submitted

    @property
    def blocking(self) -> bool:
        """The executor ran the tasks to the end (local, debug); else a scheduler runs them."""
        return self.ran_by is not None and self.ran_by.blocking

    def scripts(self) -> tuple[str, ...] | None:
        """What the scheduler is (or would be) handed for each array, as the executor renders
        it; None where nothing goes to a scheduler."""
        if self.ran_by is None:
            return None
        return self.ran_by.scripts([len(a.tasks) for a in self.plan.arrays], self.options)


def _select(study: Study, status: StudyStatus, selection: Selection = ALL,
            limit: int | None = None) -> tuple[list[TrialSpec], int, int]:
    todo = set(status.keys_in(TrialState.FAILED, TrialState.STOPPED, TrialState.MISSING))
    specs = [t for t in expand(study) if t.key in todo and selection.matches(t)][:limit]
    done = len(status.keys_in(TrialState.DONE))
    live = len(status.keys_in(TrialState.RUNNING, TrialState.PENDING))
    return specs, done, live


def _packs(study: Study, the_plan: Plan, device: str, data_dir: str | None,
           reraise: bool, progress: bool) -> list[list[TaskPack]]:
    return [[TaskPack(root=str(study.root), trials=task.trials, device=device,
                      data_dir=data_dir, progress=progress, reraise=reraise,
                      threads=study.cluster.cpus_per_task)
             for task in array.tasks] for array in the_plan.arrays]


def submit(study: Study, executor: str = "slurm", *, dry_run: bool = False,
           progress: bool = True, device: str | None = None, resume: bool = False,
           then: Callable[[str], Any] | None = None,
           sacct: SacctRunner = run_sacct, calibration: str | None = None,
           selection: Selection = ALL, limit: int | None = None) -> SubmitResult:
    """Submit (or with `resume=True`, resubmit) every trial not DONE and not live (of the
    `selection`, the first `limit` of them in study order).

    `then(root)` runs once the training has ended: on SLURM as one job depending on the arrays
    (`afterany`), with blocking executors right after the run (the study's `chain_reduce`; see
    `Executor.submit_after`). Estimates use the study's finished trials, then `calibration` (see
    `cluster.rates`); the arrays share `max_running` (see `cluster.concurrency`)."""
    checked = _validate(study, executor, device=device, resume=resume, calibration=calibration)
    if dry_run:
        return _dry_run(checked, _select_and_plan(checked, sacct, selection, limit))
    with _locked(checked.paths) as job_ids:
        check_frozen(study, checked.paths)  # again, under the lock
        planned = _select_and_plan(checked, sacct, selection, limit)
        submitted = _submit_and_record(checked, planned, job_ids,
                                       reason="resume" if resume else "submit")
        chained = _chain(checked, then, submitted) if then is not None else None
        errors = checked.ran_by.finish(progress)
    return SubmitResult(executor, planned.plan, planned.done, planned.live, tuple(job_ids),
                        submitted.array_ids, tuple(errors), False, chained, submitted.options,
                        planned.changed, checked.ran_by)


@dataclass(frozen=True)
class _Checked:
    """A submission that passed every check: nothing is written before this exists."""

    study: Study
    executor: str
    ran_by: Executor
    paths: Paths
    data_dir: str | None             # resolved once, so every node reads the same folder
    device: str                      # the tasks' device
    context: PlanContext


@dataclass(frozen=True)
class _Planned:
    plan: Plan                       # of the trials to submit
    done: int
    live: int
    slots: list[tuple[int, tuple[str, ...], bool]]  # per array: cap, waits for, after previous
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Submitted:
    submission_id: str
    array_ids: tuple[str, ...]
    options: tuple[ArrayOptions, ...]


def _validate(study: Study, executor: str, *, device: str | None, resume: bool,
              calibration: str | None) -> _Checked:
    """Executor available, device known, root writable, same study at the root, data present,
    the cluster able to run the study: checked before anything is written."""
    paths = Paths(study.root)
    chosen = get_executor(executor, study, paths)
    chosen.check()
    if device is not None and device not in ("auto", "cuda", "cpu"):
        raise ClusterError(f"device must be auto, cuda or cpu, got {device!r}")
    check_root_writable(study.root)
    check_root_trusted(paths)
    frozen = check_frozen(study, paths)
    union_text(study, paths)  # a grid that grows stays within the limits
    if resume and not frozen:
        raise StudyError(f"no study was submitted at {study.root} (no {paths.study_file.name}); "
                         f"use `{study_command('submit', study)}`")
    data_dir = check_submission(study, chosen)
    ctx = context(study, executor, info=chosen.cluster_info(), calibration=calibration,
                  device=device)
    if ctx.problems:
        raise ClusterError(ctx.problems[0])
    return _Checked(study, executor, chosen, paths, data_dir, device or study.cluster.device,
                    ctx)


def _select_and_plan(checked: _Checked, sacct: SacctRunner, selection: Selection,
                     limit: int | None) -> _Planned:
    """The trials to submit (no DONE marker, no live job) packed into arrays, and the slots of
    `max_running` each array gets."""
    status = study_status(checked.study, sacct=sacct)
    specs, done, live = _select(checked.study, status, selection, limit)
    the_plan = plan(specs, checked.context.profile, checked.context.rates)
    return _Planned(the_plan, done, live,
                    _slots(the_plan, checked.context.profile.max_running, status),
                    tuple(status.keys_in(TrialState.CHANGED)))


def _dry_run(checked: _Checked, planned: _Planned) -> SubmitResult:
    """What would be submitted (the arrays not yet submitted named by index)."""
    placeholders = [f"<array #{i}>" for i in range(len(planned.plan.arrays))]
    options = _array_options(planned.plan, checked.context.profile.time_limit_min,
                             planned.slots, placeholders)
    return SubmitResult(checked.executor, planned.plan, planned.done, planned.live, (), (), (),
                        True, options=tuple(options), changed=planned.changed,
                        ran_by=checked.ran_by)


def _submit_and_record(checked: _Checked, planned: _Planned, job_ids: list[str],
                       reason: str) -> _Submitted:
    """Each array to the executor, then into the ledger; the study file is frozen into the root
    just before the first one. Job ids go into `job_ids` as soon as they exist."""
    study, paths = checked.study, checked.paths
    submission_id = uuid.uuid4().hex[:12]
    array_ids: list[str] = []
    packs_by_array = _packs(study, planned.plan, checked.device, checked.data_dir,
                            checked.ran_by.reraise, checked.ran_by.trainer_progress)
    options: list[ArrayOptions] = []
    text = to_freeze(study, paths) if packs_by_array else None
    if text is not None:  # before any job: a failed write (disk full) submits none
        atomic_write_text(paths.study_file, text)  # the study, or the union of a grown grid
    for i, packs in enumerate(packs_by_array):
        # the array ids it may wait for are known once the previous arrays are submitted
        options.append(_array_options(planned.plan, checked.context.profile.time_limit_min,
                                      planned.slots, array_ids)[i])
        ids = checked.ran_by.submit(packs, options[-1])
        job_ids.extend(ids)  # submitted: from here on nothing of the root is undone
        array_id = ids[0].split("_")[0]
        ledger.append(paths.ledger, ledger.Submission(
            submission_id=submission_id, executor=checked.executor, array_id=array_id,
            submitted_at=ledger.now_iso(), reason=reason, fingerprint=study.fingerprint,
            tasks=tuple(ledger.TaskRecord(i, job_id, pack.keys)
                        for i, (job_id, pack) in enumerate(zip(ids, packs, strict=True)))))
        array_ids.append(array_id)
    return _Submitted(submission_id, tuple(array_ids), tuple(options))


def _chain(checked: _Checked, then: Callable[[str], Any], submitted: _Submitted) -> str | None:
    """`then(root)` after the arrays just submitted (none: nothing to chain); a job the
    scheduler queues goes into the ledger."""
    if not submitted.array_ids:
        return None
    chained = checked.ran_by.submit_after(then, (str(checked.study.root),),
                                           submitted.array_ids)
    if chained is not None:
        ledger.append(checked.paths.ledger, ledger.Submission(
            submission_id=submitted.submission_id, executor=checked.executor,
            array_id=chained, submitted_at=ledger.now_iso(), reason="then",
            fingerprint=checked.study.fingerprint, tasks=()))
    return chained


@contextlib.contextmanager
def _locked(paths: Paths) -> Iterator[list[str]]:
    """The study's lock around one submission, yielding the list its job ids go into: a
    submission refused before its first job leaves no trace (see `_undo`)."""
    created = _first_missing(paths.root)  # the topmost folder this call creates, if any
    logs_before = _entries(paths.logs)
    paths.root.mkdir(parents=True, exist_ok=True)
    for folder in (paths.root, paths.logs):
        if created is not None or not folder.exists():  # only what this call creates
            folder.mkdir(exist_ok=True)
            restrict(folder)
    lock_existed = paths.lock.exists()
    lock = submit_lock.acquire(paths, LOCK_TIMEOUT_S)
    frozen_before = _frozen_bytes(paths)  # under the lock: no other call rewrites it now
    job_ids: list[str] = []
    try:
        yield job_ids
    except BaseException:
        if not job_ids:  # refused before anything was submitted: leave no trace
            _restore_frozen(paths, frozen_before)
            _undo(paths, lock, created, lock_existed, logs_before)
        raise
    finally:
        if lock.is_locked:
            submit_lock.release(paths, lock)


def _frozen_bytes(paths: Paths) -> bytes | None:
    try:
        return paths.study_file.read_bytes()
    except OSError:
        return None


def _restore_frozen(paths: Paths, before: bytes | None) -> None:
    """The frozen study as it was before a submission that submitted nothing (it may have
    frozen the study, or grown its grid)."""
    if _frozen_bytes(paths) == before:
        return
    with contextlib.suppress(OSError):
        if before is None:
            paths.study_file.unlink()
        else:
            atomic_write_bytes(paths.study_file, before)


def _slots(the_plan: Plan, max_running: int, status: StudyStatus
           ) -> list[tuple[int, tuple[str, ...], bool]]:
    live_jobs = [t.job_id for t in status.trials if t.job_id
                 and t.state in (TrialState.RUNNING, TrialState.PENDING)]
    return schedule(len(the_plan.arrays), max_running, live_jobs)


def _array_options(the_plan: Plan, default_limit_min: int,
                   slots: Sequence[tuple[int, tuple[str, ...], bool]],
                   array_ids: Sequence[str]) -> list[ArrayOptions]:
    """How each array is submitted (dry runs name the arrays not yet submitted by index)."""
    out = []
    for i, (array, (cap, after, after_previous)) in enumerate(
            zip(the_plan.arrays, slots, strict=True)):
        if after_previous and i - 1 < len(array_ids):
            after = (*after, array_ids[i - 1])
        out.append(ArrayOptions(array.time_limit_min or default_limit_min, cap, after))
    return out


def _first_missing(path: Path) -> Path | None:
    """The topmost folder of `path` that does not exist yet (None when `path` exists)."""
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def _entries(folder: Path) -> set[str] | None:
    """The names in `folder`, None when it does not exist."""
    try:
        return set(os.listdir(folder))
    except OSError:
        return None


def _undo(paths: Paths, lock: filelock.FileLock, created: Path | None, lock_existed: bool,
          logs_before: set[str] | None) -> None:
    """Undo what a refused submission wrote: the folders it created, else the scratch files
    submitit left in logs/ and the lock file it created (the lock is still held, so no other
    submission is inside the root meanwhile)."""
    if created is not None:
        submit_lock.release(paths, lock)
        shutil.rmtree(created, ignore_errors=True)
        return
    if logs_before is None:
        shutil.rmtree(paths.logs, ignore_errors=True)
    else:
        for name in (_entries(paths.logs) or set()) - logs_before:
            target = paths.logs / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    target.unlink()
    if not lock_existed:
        with contextlib.suppress(OSError):
            paths.lock.unlink()
    submit_lock.release(paths, lock)


def resume(study: Study, executor: str | None = None, *, dry_run: bool = False,
           progress: bool = True, device: str | None = None,
           then: Callable[[str], Any] | None = None,
           sacct: SacctRunner = run_sacct, calibration: str | None = None,
           selection: Selection = ALL, limit: int | None = None) -> SubmitResult:
    """Resubmit exactly the trials with no DONE marker and no live job, re-planned; with the
    executor of the root's last submission unless given (slurm before any)."""
    if executor is None:
        executor = ledger.last_executor(Paths(study.root).ledger) or "slurm"
    return submit(study, executor, dry_run=dry_run, progress=progress, device=device,
                  resume=True, then=then, sacct=sacct, calibration=calibration,
                  selection=selection, limit=limit)

