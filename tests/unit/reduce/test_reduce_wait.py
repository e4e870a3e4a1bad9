"""Waiting on markers: progress to completion, and a timeout that says what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from reduce_support import save_model, tiny_study

from jobs import Paths, expand, write_failed
from reduce import WaitTimeout, scan_markers, wait_for_markers


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_timeout_lists_the_missing_trials(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    paths, trials = Paths(study.root), expand(study)
    save_model(paths, trials[0], seed=0)
    write_failed(paths, trials[1], RuntimeError("boom"))
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as info:
        wait_for_markers(paths, trials, timeout_s=25, poll_s=10, progress=False, clock=clock,
                         sleep=clock.sleep)
    message = str(info.value)
    assert "timed out after 25s: 4 of 6 trial(s) not finished" in message
    assert trials[2].key in message and "1 failed" in message
    assert clock.sleeps == [10, 10, 5]  # never sleeps past the deadline


def test_wait_returns_once_every_trial_is_done_or_failed(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    paths, trials = Paths(study.root), expand(study)
    write_failed(paths, trials[0], RuntimeError("boom"))
    clock = FakeClock()
    pending = list(trials[1:])

    def finish_some(seconds: float) -> None:  # two trials finish per poll
        clock.sleep(seconds)
        for trial in pending[:2]:
            save_model(paths, trial, seed=1)
        del pending[:2]

    scan = wait_for_markers(paths, trials, timeout_s=None, poll_s=5, progress=False,
                            clock=clock, sleep=finish_some)
    assert scan.settled and not scan.complete
    assert len(scan.done) == 5 and scan.failed == (trials[0].key,)
    assert len(clock.sleeps) == 3
    assert scan_markers(paths, trials) == scan
