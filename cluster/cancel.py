"""`drosweep cancel`: stop a study's live tasks, keeping every checkpoint for `resume`.

SLURM tasks are cancelled with one `scancel` of their job ids (from the ledger); scancel sends
SIGTERM, on which a task checkpoints and stops (cluster/preemptible.py). A local task is sent SIGTERM
through the process named by its heartbeat; its runner goes on with the other trials. A trial
still in a local run's queue is asked off it (cluster/executors/blocking.py: the runner drops it).
A task trains a pack of trials, so cancelling one trial stops the trials it shares a task with:
the result names them all.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass

from cluster import ledger
from cluster.errors import ClusterError
from cluster.executors import tracks_jobs
from cluster.executors.blocking import request_cancel
from cluster.executors.slurm import SlurmExecutor
from cluster.executors.slurm.sacct import SacctRunner, run_sacct
from cluster.executors.slurm.scancel import ScancelRunner, run_scancel
from cluster.select import Selection
from cluster.state_enums import TrialState
from cluster.status import study_status
from jobs.heartbeat import BeatState, read_beat
from jobs.paths import Paths
from jobs.study import Study

Killer = Callable[[int, int], None]


@dataclass(frozen=True)
class CancelResult:
    job_ids: tuple[str, ...]     # SLURM tasks cancelled
    pids: tuple[int, ...]        # local task processes stopped
    keys: tuple[str, ...]        # every trial of those tasks, and the dequeued ones
    unreachable: tuple[str, ...]  # live on another host outside SLURM: not stopped
    dequeued: tuple[str, ...] = ()  # taken off a local run's queue before their task started


def cancel(study: Study, selection: Selection, *, sacct: SacctRunner = run_sacct,
           scancel: ScancelRunner = run_scancel, kill: Killer = os.kill) -> CancelResult:
    paths = Paths(study.root)
    status = study_status(study, sacct=sacct)
    latest = ledger.latest_tasks(ledger.read(paths.ledger))
    host = socket.gethostname()
    jobs: dict[str, tuple[str, ...]] = {}
    pids: dict[int, list[str]] = {}
    dequeued: list[str] = []
    unreachable: list[str] = []
    for t in status.trials:
        if t.state not in (TrialState.RUNNING, TrialState.PENDING) \
                or not selection.matches(t.trial):
            continue
        key = t.trial.key
        beat = read_beat(paths, key)
        record = latest.get(key)
        if record is not None and tracks_jobs(record[0].executor) \
                and (t.job_state is None or t.job_state.live):
            jobs[record[1].job_id] = record[1].keys
        elif beat is not None and beat.slurm_job_id:
            jobs[beat.slurm_job_id] = (key,)
        elif beat is not None and beat.host == host and beat.state is BeatState.QUEUED:
            dequeued.append(key)  # its runner's pid: SIGTERM there would stop the whole run
        elif beat is not None and beat.host == host:
            pids.setdefault(beat.pid, []).append(key)
        else:
            unreachable.append(key)
    for pid, keys in pids.items():  # the trials the task packs with them stop too
        record = latest.get(keys[0])
        packed = record[1].keys if record is not None else ()
        keys.extend(k for k in packed if k not in keys and _beat_pid(paths, k) == pid)
    if not jobs and not pids and not dequeued:
        what = "" if selection.everything else " among the selected trials"
        extra = (f" ({len(unreachable)} trial(s) run on another host outside SLURM: stop them "
                 f"there)") if unreachable else ""
        raise ClusterError(f"nothing live to cancel in study {study.name}{what}{extra}")
    if jobs:
        SlurmExecutor(study, paths).cancel_jobs(sorted(jobs), scancel)
    if dequeued:
        request_cancel(paths, dequeued)
    for pid in sorted(pids):
        try:
            kill(pid, signal.SIGTERM)
        except ProcessLookupError:  # ended meanwhile
            continue
    keys = sorted({k for ks in jobs.values() for k in ks} | {k for ks in pids.values() for k in ks}
                  | set(dequeued))
    return CancelResult(tuple(sorted(jobs)), tuple(sorted(pids)), tuple(keys),
                        tuple(unreachable), tuple(sorted(dequeued)))


def _beat_pid(paths: Paths, key: str) -> int | None:
    beat = read_beat(paths, key)
    return beat.pid if beat is not None else None
