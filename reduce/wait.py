"""Waiting on the study's completion markers (DONE / FAILED), with progress and a timeout."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from jobs import Paths, TrialSpec, read_done, read_failed
from reduce.errors import WaitTimeout


@dataclass(frozen=True)
class MarkerScan:
    done: tuple[str, ...]
    failed: tuple[str, ...]
    missing: tuple[str, ...]  # neither marker yet: pending, running, or lost

    @property
    def settled(self) -> bool:
        return not self.missing

    @property
    def complete(self) -> bool:
        return not self.missing and not self.failed


def scan_markers(paths: Paths, trials: Sequence[TrialSpec]) -> MarkerScan:
    done: list[str] = []
    failed: list[str] = []
    missing: list[str] = []
    for trial in trials:
        if read_done(paths, trial, retries=0) is not None:
            done.append(trial.key)
        elif read_failed(paths, trial, retries=0) is not None:
            failed.append(trial.key)
        else:
            missing.append(trial.key)
    return MarkerScan(tuple(done), tuple(failed), tuple(missing))


def _listing(keys: Sequence[str], limit: int = 5) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def wait_for_markers(paths: Paths, trials: Sequence[TrialSpec], *, timeout_s: float | None,
                     poll_s: float = 10.0, progress: bool = True,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep,
                     status_command: str = "drosweep status") -> MarkerScan:
    """Poll until every trial is DONE or FAILED; `WaitTimeout` (listing what is missing and
    naming `status_command`) after `timeout_s` seconds (None: wait forever)."""
    start = clock()
    bar = tqdm(total=len(trials), desc="waiting for trials", unit="trial", disable=not progress,
               dynamic_ncols=True)
    try:
        while True:
            scan = scan_markers(paths, trials)
            bar.n = len(scan.done) + len(scan.failed)
            bar.set_postfix(done=len(scan.done), failed=len(scan.failed), refresh=False)
            bar.refresh()
            if scan.settled:
                return scan
            elapsed = clock() - start
            if timeout_s is not None and elapsed >= timeout_s:
                raise WaitTimeout(f"timed out after {elapsed:.0f}s: {len(scan.missing)} of "
                                  f"{len(trials)} trial(s) not finished "
                                  f"({_listing(scan.missing)}); {len(scan.failed)} failed; "
                                  f"see `{status_command}`")
            remaining = poll_s if timeout_s is None else min(poll_s, timeout_s - elapsed)
            sleep(max(0.0, remaining))
    finally:
        bar.close()
