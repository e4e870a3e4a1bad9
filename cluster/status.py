"""Where a study stands: completion markers first, scheduler states second.

A DONE marker settles a trial. Otherwise the latest submission that included it (ledger) names
its job, whose state comes from one `sacct` call for all arrays of the poll; `job.result()` is
never consulted (a task killed without a result pickle would block it forever). Inside a running
task the unfinished trials of its first (method, radius) are running (they train together), the
trials of any other group in its pack are pending. A live heartbeat (jobs/heartbeat.py) overrides
both: a task on this machine or any node trains the trial now (running) or later (pending).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster import ledger
from cluster.cost import estimate
from cluster.executors import get_executor, tracks_jobs
from cluster.executors.slurm.sacct import SacctRunner, run_sacct
from cluster.state_enums import TRIAL_STATES, USUAL_STATES, JobState, TrialState
from jobs.frozen import check_frozen
from jobs.grid import TrialSpec, expand
from jobs.heartbeat import Beat, BeatState, read_beat
from jobs.integrity import VerifyReport, done_problem, verify_models
from jobs.markers import DoneMarker, FailedMarker, read_done, read_failed
from jobs.paths import (
    CHECKPOINT_NAME,
    DONE_NAME,
    FAILED_NAME,
    HEARTBEAT_NAME,
    PROGRESS_NAME,
    Paths,
    TrialFiles,
)
from jobs.study import Study
from trainers.progress import Progress, read_progress
from trainers.spec import Method

SACCT_GRACE_S = 120.0   # a just-submitted array may not be in accounting yet: count it pending


@dataclass(frozen=True)
class TrialStatus:
    trial: TrialSpec
    state: TrialState
    job_id: str | None = None
    job_state: JobState | None = None
    detail: str = ""        # why failed (the FAILED marker's error or the job's end state)
    host: str | None = None  # where it trains (live heartbeat) or failed (FAILED marker)


@dataclass(frozen=True)
class GroupStatus:
    method: Method
    radius: float
    counts: dict[TrialState, int]
    eta_s: float | None     # None when nothing is queued or running


@dataclass(frozen=True)
class StudyStatus:
    name: str
    root: str
    trials: tuple[TrialStatus, ...]
    groups: tuple[GroupStatus, ...]
    eta_s: float | None
    # the walk of runs/ this status was read from: `status --detailed` reads progress files by it
    files: TrialFiles | None = field(default=None, repr=False, compare=False)
    # the progress files of running trials that the ETA read: `--detailed` does not read them again
    progress: dict[str, Progress] = field(default_factory=dict, repr=False, compare=False)

    @property
    def counts(self) -> dict[TrialState, int]:
        c = Counter(t.state for t in self.trials)
        return {s: c.get(s, 0) for s in TRIAL_STATES}

    def narrowed(self, keep: Callable[[TrialSpec], bool]) -> StudyStatus:
        """The same view of the trials `keep` selects (`status --method robust`): the groups
        that hold any, their counts over the selected trials; each group keeps its ETA, the
        study's is the longest of theirs."""
        trials = tuple(t for t in self.trials if keep(t.trial))
        groups = []
        for g in self.groups:
            mine = Counter(t.state for t in trials
                           if t.trial.method is g.method and t.trial.radius == g.radius)
            if mine:
                groups.append(GroupStatus(g.method, g.radius,
                                          {s: mine.get(s, 0) for s in TRIAL_STATES}, g.eta_s))
        etas = [g.eta_s for g in groups if g.eta_s is not None]
        return StudyStatus(self.name, self.root, trials, tuple(groups),
                           max(etas) if etas else None, self.files, self.progress)

    def keys_in(self, *states: TrialState) -> list[str]:
        return [t.trial.key for t in self.trials if t.state in states]

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.name, "root": self.root,
            "counts": {s.value: n for s, n in self.counts.items() if n or s in USUAL_STATES},
            "total": len(self.trials), "eta_s": self.eta_s,
            "groups": [{"method": g.method.value, "radius": g.radius,
                        "counts": {s.value: n for s, n in g.counts.items()
                                   if n or s in USUAL_STATES}, "eta_s": g.eta_s}
                       for g in self.groups],
            "failed": [{"key": t.trial.key, "job_id": t.job_id, "detail": t.detail}
                       for t in self.trials if t.state is TrialState.FAILED],
            "changed": [{"key": t.trial.key, "detail": t.detail}
                        for t in self.trials if t.state is TrialState.CHANGED],
        }


def _classify(done: DoneMarker | None, failed: FailedMarker | None,
              record: tuple[ledger.Submission, ledger.TaskRecord] | None,
              states: dict[str, JobState], now: float, checkpointed: bool) -> TrialState:
    """The state of one trial, before the running-pack refinement. Not failed and not live, a
    trial with a checkpoint is `stopped` (trained part way), without one `missing`."""
    if done is not None:
        return TrialState.DONE
    fallback = TrialState.FAILED if failed is not None \
        else TrialState.STOPPED if checkpointed else TrialState.MISSING
    if record is None or not tracks_jobs(record[0].executor):
        return fallback
    sub, task = record
    state = states.get(task.job_id)
    if state is None:
        return TrialState.PENDING if now - sub.submitted_epoch < SACCT_GRACE_S else fallback
    if state.live:
        if failed is not None and failed.slurm_job_id == task.job_id:
            return TrialState.FAILED
        return TrialState.RUNNING if state.running else TrialState.PENDING
    if state is JobState.CANCELLED and failed is None and checkpointed:
        return TrialState.STOPPED  # scancel'd part way (`drosweep cancel`): resume trains it on
    if state.terminal:
        return TrialState.FAILED
    return fallback


def study_status(study: Study, *, sacct: SacctRunner = run_sacct, now: float | None = None,
                 specs: Sequence[TrialSpec] | None = None) -> StudyStatus:
    """`specs`: `expand(study)` when the caller has it already (it costs ~0.2 s per 10,000)."""
    paths = Paths(study.root)
    check_frozen(study, paths)
    specs = expand(study) if specs is None else specs
    moment = time.time() if now is None else now
    files = paths.trial_files()  # one walk: only the files that exist are opened
    done = {t.key: read_done(paths, t) if files.may_hold(t.key, DONE_NAME) else None
            for t in specs}
    failed = {t.key: read_failed(paths, t)
              if done[t.key] is None and files.may_hold(t.key, FAILED_NAME) else None
              for t in specs}
    beats = {t.key: read_beat(paths, t.key) for t in specs
             if done[t.key] is None and files.may_hold(t.key, HEARTBEAT_NAME)}
    latest = ledger.latest_tasks(ledger.read(paths.ledger))
    arrays: dict[str, set[str]] = {}   # executor -> the arrays whose jobs it knows the state of
    for k in done:
        if done[k] is None and k in latest and tracks_jobs(latest[k][0].executor):
            arrays.setdefault(latest[k][0].executor, set()).add(latest[k][0].array_id)
    states: dict[str, JobState] = {}
    for name, ids in arrays.items():
        states.update(get_executor(name, study, paths).job_states(ids, sacct))

    by_key: dict[str, TrialStatus] = {}
    for t in specs:
        record = latest.get(t.key)
        state = _classify(done[t.key], failed[t.key], record, states, moment,
                          files.may_hold(t.key, CHECKPOINT_NAME))
        job_id = record[1].job_id if record else None
        job_state = states.get(job_id) if job_id else None
        beat = _live(beats.get(t.key), moment)
        if beat is not None and state is not TrialState.DONE:  # a task trains it now
            state = TrialState.RUNNING if beat.state is BeatState.TRAINING \
                else TrialState.PENDING
        detail, host = "", beat.host if beat is not None else None
        certified = done[t.key]
        if certified is not None:  # is the model still the file its marker certifies, and the
            detail = done_problem(paths, t, certified) or ""  # data what it trained on?
            state = TrialState.CHANGED if detail else state
        elif files.may_hold(t.key, DONE_NAME):
            detail = _unreadable_done(paths, t)
        if state is TrialState.FAILED:
            marker = failed[t.key]
            detail = marker.error if marker is not None else f"job ended {job_state}"
            host = marker.host if marker is not None else None
        by_key[t.key] = TrialStatus(t, state, job_id, job_state, detail, host)
    _refine_running(by_key, latest)
    trials = tuple(by_key[t.key] for t in specs)
    # the measured rate of each running trial: only their progress files are opened
    measured = {t.trial.key: p for t in trials if t.state is TrialState.RUNNING
                and files.may_hold(t.trial.key, PROGRESS_NAME)
                and (p := read_progress(paths.progress(t.trial.key))) is not None}
    started = {k: b.started_at for k in measured if (b := _live(beats.get(k), moment))}
    # a local run trains `local_parallelism` tasks at once, a SLURM study `max_running`
    local = any(not tracks_jobs(latest[t.trial.key][0].executor) for t in trials
                if t.state in (TrialState.RUNNING, TrialState.PENDING) and t.trial.key in latest)
    parallel = study.cluster.local_parallelism if local else study.cluster.max_running
    groups, eta = _groups_and_eta(study, trials, done, _Rates(measured, started, moment),
                                  parallel)
    return StudyStatus(study.name, str(study.root), trials, groups, eta, files, measured)


def _unreadable_done(paths: Paths, trial: TrialSpec) -> str:
    """Why a DONE.json that the walk saw does not count ("" when it is gone by now): a torn or
    empty marker leaves its trial not done, and `status -v` says so instead of a bare state."""
    path = paths.done(trial)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"{path}: DONE marker unreadable ({exc.strerror or exc}); `resume` trains it again"
    what = "empty" if size == 0 else f"torn or not a DONE marker ({size} bytes)"
    return (f"{path}: DONE marker unreadable ({what}); `resume` finishes the trial again from "
            f"its checkpoint")


def _live(beat: Beat | None, now: float) -> Beat | None:
    return beat if beat is not None and beat.live(now) else None


def _refine_running(by_key: dict[str, TrialStatus],
                    latest: dict[str, tuple[ledger.Submission, ledger.TaskRecord]]) -> None:
    """A running task trains its unfinished trials of one (method, radius) together, as one
    batched model, and the trials of any other group after them: those are pending."""
    seen: set[str] = set()
    for key, status in list(by_key.items()):
        if status.state is not TrialState.RUNNING or status.job_id in seen \
                or status.job_id is None or key not in latest:
            continue
        seen.add(status.job_id)
        task = latest[key][1]
        members = [by_key[k] for k in task.keys
                   if k in by_key and latest[k][1] is task
                   and by_key[k].state is TrialState.RUNNING]
        group = members[0].trial.group
        for s in members:
            if s.trial.group != group:
                by_key[s.trial.key] = TrialStatus(s.trial, TrialState.PENDING, s.job_id,
                                                  s.job_state, host=s.host)


@dataclass(frozen=True)
class _Left:
    """Training time left: `work` in all, of `trials` trials, the longest running one `longest`."""

    work: float = 0.0
    trials: int = 0
    longest: float = 0.0

    def __add__(self, other: _Left) -> _Left:
        return _Left(self.work + other.work, self.trials + other.trials,
                     max(self.longest, other.longest))

    def eta(self, parallel: int) -> float | None:
        """Work spread over the tasks that run at once, never before the longest running one."""
        if not self.trials:
            return None
        return max(self.work / min(parallel, self.trials), self.longest)


@dataclass(frozen=True)
class _Rates:
    """What running trials measured: their progress files and when their tasks started."""

    progress: dict[str, Progress]
    started: dict[str, float]   # the task's start (heartbeat), epoch seconds
    now: float

    def remaining(self, key: str) -> float | None:
        p = self.progress.get(key)
        return p.remaining_s(self.now) if p is not None else None

    def whole(self, key: str) -> float | None:
        """A trial's whole time: since its task started (start-up included) plus what is left;
        without a heartbeat, its steps at the measured rate."""
        p = self.progress.get(key)
        per_step = p.seconds_per_step() if p is not None else None
        if p is None or per_step is None:
            return None
        left = p.remaining_s(self.now) or 0.0
        start = self.started.get(key)
        return self.now - start + left if start is not None else p.total * per_step


def _groups_and_eta(study: Study, trials: Sequence[TrialStatus],
                    done: dict[str, DoneMarker | None], rates: _Rates, parallel: int
                    ) -> tuple[tuple[GroupStatus, ...], float | None]:
    """Per (method, radius) counts and ETA over `parallel` tasks at once. A running trial's time
    left is what its measured rate (progress.json: steps done in wall seconds) gives; a queued
    trial's time is the running trials' measured whole time, else the mean of finished
    uninterrupted trials of its group, else the cost model's estimate (for a running trial
    without a rate yet: half of that)."""
    grouped: dict[tuple[Method, float], list[TrialStatus]] = {}
    for t in trials:
        grouped.setdefault(t.trial.group, []).append(t)
    groups: list[GroupStatus] = []
    total = _Left()
    for (method, radius), members in grouped.items():
        left = [t for t in members if t.state in (TrialState.RUNNING, TrialState.PENDING)]
        mine = _Left()
        if left:
            per_trial = _per_trial(study, members, done, rates)
            for t in left:
                known = rates.remaining(t.trial.key)
                if known is not None:
                    mine += _Left(known, 1, known)
                else:
                    mine += _Left(per_trial * (0.5 if t.state is TrialState.RUNNING else 1.0), 1)
        total += mine
        counts = Counter(t.state for t in members)
        groups.append(GroupStatus(method, radius, {s: counts.get(s, 0) for s in TRIAL_STATES},
                                  mine.eta(parallel)))
    return tuple(groups), total.eta(parallel)


def _per_trial(study: Study, members: Sequence[TrialStatus],
               done: dict[str, DoneMarker | None], rates: _Rates) -> float:
    """Seconds one trial of this group takes: measured where possible (see _groups_and_eta)."""
    walls = [w for t in members if (w := rates.whole(t.trial.key)) is not None]
    if not walls:
        walls = [m.wall_s for m in (done[t.trial.key] for t in members)
                 if m is not None and m.resumed_from == 0]
    if walls:
        return sum(walls) / len(walls)
    return estimate(members[0].trial.train_spec, study.cluster).seconds


def verify_study(study: Study) -> VerifyReport:
    """Every DONE trial's model file hashed against its marker (`status --verify`)."""
    paths = Paths(study.root)
    check_frozen(study, paths)
    return verify_models(paths, expand(study))

