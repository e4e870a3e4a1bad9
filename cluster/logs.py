"""`drosweep logs`: where a trial's task wrote its output, and the traceback of its failure.

The latest submission that included the trial (ledger) names its task; submitit writes that
task's stdout/stderr under `logs/` (SLURM: `logs/<job>/<job>_0_log.out`; local and debug:
`logs/<executor>/<task label>/<pid>_0_log.out`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from submitit.core.utils import JobPaths

from cluster import ledger
from cluster.sacct import SacctRunner, job_states, run_sacct
from cluster.select import make_selection
from jobs.heartbeat import read_beat
from jobs.markers import FailedMarker, read_failed
from jobs.paths import Paths
from jobs.study import Study


@dataclass(frozen=True)
class TrialLogs:
    key: str
    executor: str | None         # None: never submitted
    job_id: str | None
    array_id: str | None
    files: tuple[Path, ...]      # the task's log files that exist
    failed: FailedMarker | None


def trial_logs(study: Study, key: str) -> TrialLogs:
    make_selection(study, keys=[key])  # a key not in the study: one clear error
    paths = Paths(study.root)
    record = ledger.latest_tasks(ledger.read(paths.ledger)).get(key)
    failed = read_failed(paths, key, retries=0)
    if record is None:
        return TrialLogs(key, None, None, None, (), failed)
    sub, task = record
    return TrialLogs(key, sub.executor, task.job_id, sub.array_id,
                     tuple(log_files(paths, sub.executor, task.job_id)), failed)


def log_files(paths: Paths, executor: str, job_id: str) -> list[Path]:
    if executor == "slurm":
        job = JobPaths(paths.logs / "%j", job_id=job_id, task_id=0)
        return [p for p in (job.stdout, job.stderr) if p.is_file()]
    folder = paths.logs / executor / job_id
    found = list(folder.glob("*_log.out")) + list(folder.glob("*_log.err"))
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def is_live(study: Study, logs: TrialLogs, sacct: SacctRunner = run_sacct) -> bool:
    """The trial's task may still write: a live heartbeat, or its SLURM job is queued or running."""
    beat = read_beat(Paths(study.root), logs.key)
    if beat is not None and beat.live():
        return True
    if logs.executor == "slurm" and logs.job_id and logs.array_id:
        state = job_states([logs.array_id], sacct).get(logs.job_id)
        return state is not None and state.live
    return False


def tail_lines(path: Path, n: int | None) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    if n is None:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[-n:]) if n > 0 else ""


class Follower:
    """New bytes of the task's log files since the last call (files may appear later)."""

    def __init__(self, paths: Paths, logs: TrialLogs) -> None:
        self.paths, self.logs = paths, logs
        self.offsets = {p: p.stat().st_size for p in logs.files}

    def poll(self) -> list[tuple[Path, str]]:
        assert self.logs.executor is not None and self.logs.job_id is not None
        out: list[tuple[Path, str]] = []
        for path in log_files(self.paths, self.logs.executor, self.logs.job_id):
            start = self.offsets.get(path, 0)
            size = path.stat().st_size
            if size > start:
                with path.open("rb") as fh:
                    fh.seek(start)
                    out.append((path, fh.read(size - start).decode("utf-8", "replace")))
                self.offsets[path] = size
        return out


def follow(study: Study, logs: TrialLogs, emit: Callable[[Path, str], None],
           every_s: float = 1.0, check_every_s: float = 10.0,
           sacct: SacctRunner = run_sacct) -> None:
    """Print what the task appends until it is no longer live (Ctrl-C stops earlier)."""
    follower = Follower(Paths(study.root), logs)
    last_check = time.monotonic()
    while True:
        for path, text in follower.poll():
            emit(path, text)
        if time.monotonic() - last_check >= check_every_s:
            last_check = time.monotonic()
            if not is_live(study, logs, sacct):
                for path, text in follower.poll():
                    emit(path, text)
                return
        time.sleep(every_s)
