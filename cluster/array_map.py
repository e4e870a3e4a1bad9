"""Map a function over a job array: each task's result, or why its job ended without one.

Results are collected as jobs end, by polling their states and never blocking on one result, so
a task that is killed, runs out of memory or raises costs its own item only; what the caller
makes of a failure (the reduction: failed-to-reduce rows) is the caller's business.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import submitit

T = TypeVar("T")
R = TypeVar("R")


class JobFailed(Exception):
    """One array task ended without a result; its message names the job and the task's own
    error line (with its log file, where submitit names one)."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id, self.reason = job_id, reason


def map_array(executor: Callable[[int], submitit.Executor], fn: Callable[[T], R],
              items: Sequence[T], poll_s: float) -> Iterator[tuple[int, R | JobFailed]]:
    """Submit `fn(items[i])` as task i of one array (`executor(size)` configures it) and yield
    `(i, result)` or `(i, JobFailed)` in the order the jobs end."""
    if not items:
        return
    ex = executor(len(items))
    with ex.batch():
        jobs = [ex.submit(fn, item) for item in items]
    pending = dict(enumerate(jobs))
    while pending:
        for i, job in list(pending.items()):
            if not job.done():
                continue
            del pending[i]
            try:
                result = job.result()
            except Exception as exc:  # the task died or raised
                yield i, JobFailed(str(job.job_id), job_error(exc))
            else:
                yield i, result
        if pending:
            time.sleep(poll_s)


def job_error(exc: Exception) -> str:
    """The task's own error line and its log file, out of submitit's long message."""
    text = str(exc)
    sections = [s for s in re.split(r"\n-{10,}\n", text) if s.strip()]
    trace = sections[1] if len(sections) > 2 else sections[0] if sections else ""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    logs = [ln.strip(" -") for ln in text.splitlines() if ln.strip().endswith("_log.err")]
    reason = lines[-1] if lines else type(exc).__name__
    return reason[:300] + (f" (log: {logs[0]})" if logs else "")
