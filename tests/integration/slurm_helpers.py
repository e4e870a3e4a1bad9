"""Waiting on studies and reading SLURM accounting in the integration tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster import StudyStatus, TrialState, study_status
from jobs import Study


@dataclass(frozen=True)
class Cluster:
    """What the tests need to know about the local cluster."""

    cpus: int
    gpus: int


def run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 1.0,
             what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_settled(study: Study, timeout: float) -> StudyStatus:
    """Poll `drosweep status` until nothing is running or pending."""
    def settled() -> StudyStatus | None:
        status = study_status(study)
        c = status.counts
        return status if c[TrialState.RUNNING] == 0 and c[TrialState.PENDING] == 0 else None

    result: StudyStatus = wait_for(settled, timeout, 2.0, f"study {study.name} to settle")
    return result


def sacct_history(job_id: str) -> list[str]:
    """Every record of one job (requeues included), oldest first."""
    out = run(["sacct", "-D", "-X", "-n", "-P", "-o", "JobID,State", "-j", job_id]).stdout
    return [line.split("|")[1].split()[0] for line in out.splitlines()
            if line.split("|")[0] == job_id]


def job_state(job_id: str) -> str:
    history = sacct_history(job_id)
    return history[-1] if history else ""
