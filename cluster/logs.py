"""`drosweep logs`: where a trial's task wrote its output, and the traceback of its failure.

The latest submission that included the trial (ledger) names its task and the executor that ran
it, which knows where that task's stdout/stderr are (`Executor.log_files`; SLURM:
`logs/<job>/<job>_0_log.out`; local and debug: `logs/<executor>/<task label>/<pid>_0_log.out`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster import ledger
from cluster.executors import get_executor, tracks_jobs
from cluster.executors.slurm.sacct import SacctRunner, run_sacct
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
                     tuple(get_executor(sub.executor, study, paths).log_files(task.job_id)),
                     failed)


def is_live(study: Study, logs: TrialLogs, sacct: SacctRunner = run_sacct) -> bool:
    """The trial's task may still write: a live heartbeat, or its SLURM job is queued or running."""
    beat = read_beat(Paths(study.root), logs.key)
    if beat is not None and beat.live():
        return True
    if logs.executor is not None and tracks_jobs(logs.executor) and logs.job_id \
            and logs.array_id:
        executor = get_executor(logs.executor, study, Paths(study.root))
        state = executor.job_states([logs.array_id], sacct).get(logs.job_id)
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

    def __init__(self, study: Study, logs: TrialLogs) -> None:
        assert logs.executor is not None and logs.job_id is not None
        self.executor = get_executor(logs.executor, study, Paths(study.root))
        self.logs, self.job_id = logs, logs.job_id
        self.offsets = {p: p.stat().st_size for p in logs.files}

    def poll(self) -> list[tuple[Path, str]]:
        out: list[tuple[Path, str]] = []
        for path in self.executor.log_files(self.job_id):
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
    follower = Follower(study, logs)
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
