"""sacct output parsing and job states (faked output: the integration tests use the real one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.errors import ClusterError
from cluster.executors.slurm.sacct import job_states, parse_sacct, run_sacct
from cluster.state_enums import JobState

StubCommand = Callable[[str, str], Path]  # the `stub_command` fixture (conftest.py)

SAMPLE = """\
100_0|COMPLETED
100_1|FAILED
100_2|CANCELLED by 0
100_3|RUNNING
100_[4-6%2]|PENDING
100_[8,10-11]|PENDING
101|TIMEOUT
102_0|REQUEUED
102_0|RUNNING
103_1.batch|COMPLETED
104+0|RUNNING
105_0|NODE_FAIL
106_0|SOMETHING_NEW
JobID|State
"""


def test_parse_sacct() -> None:
    s = parse_sacct(SAMPLE)
    assert s["100_0"] is JobState.COMPLETED
    assert s["100_1"] is JobState.FAILED
    assert s["100_2"] is JobState.CANCELLED
    assert s["100_3"] is JobState.RUNNING
    assert {k for k, v in s.items() if v is JobState.PENDING} == {
        "100_4", "100_5", "100_6", "100_8", "100_10", "100_11"}
    assert s["101"] is JobState.TIMEOUT
    assert s["102_0"] is JobState.RUNNING  # the latest record wins
    assert "103_1" not in s and "104" not in s  # steps and het jobs are not tasks
    assert s["105_0"] is JobState.NODE_FAIL
    assert s["106_0"] is JobState.UNKNOWN
    assert parse_sacct("") == {}


@pytest.mark.parametrize(("state", "live", "running", "terminal"), [
    (JobState.PENDING, True, False, False),
    (JobState.REQUEUED, True, False, False),
    (JobState.RUNNING, True, True, False),
    (JobState.COMPLETING, True, True, False),
    (JobState.COMPLETED, False, False, True),
    (JobState.FAILED, False, False, True),
    (JobState.CANCELLED, False, False, True),
    (JobState.TIMEOUT, False, False, True),
    (JobState.PREEMPTED, False, False, True),
    (JobState.OUT_OF_MEMORY, False, False, True),
    (JobState.UNKNOWN, False, False, False),
])
def test_state_classes(state: JobState, live: bool, running: bool, terminal: bool) -> None:
    assert (state.live, state.running, state.terminal) == (live, running, terminal)


def test_parse_state_words() -> None:
    assert JobState.parse("CANCELLED by 1000") is JobState.CANCELLED
    assert JobState.parse("") is JobState.UNKNOWN
    assert JobState.parse("running") is JobState.RUNNING


def test_one_call_for_all_arrays() -> None:
    calls: list[list[str]] = []

    def fake(args: list[str]) -> str:
        calls.append(args)
        return "7_0|RUNNING\n12_0|PENDING\n"

    states = job_states(["12", "7", "12"], runner=fake)
    assert len(calls) == 1
    assert calls[0][-1] == "7,12" and "-X" in calls[0] and "-P" in calls[0]
    assert states == {"7_0": JobState.RUNNING, "12_0": JobState.PENDING}
    assert job_states([], runner=fake) == {} and len(calls) == 1


def test_missing_sacct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ClusterError, match="sacct not found"):
        run_sacct(["-j", "1"])


def test_an_unanswering_sacct_is_waited_for_once(stub_command: StubCommand, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import cluster.executors.slurm.sacct as sacct

    log = tmp_path / "calls"
    stub_command("sacct", f'echo x >> "{log}"; exec sleep 30')
    monkeypatch.setattr(sacct, "TIMEOUT_S", 0.5)
    with pytest.raises(ClusterError, match=r"did not answer within 0\.5 s \(slurmdbd down\?\)"):
        run_sacct(["-j", "1"])
    start = time.monotonic()
    with pytest.raises(ClusterError, match="a moment ago"):
        run_sacct(["-j", "1"])
    assert time.monotonic() - start < 0.4 and log.read_text() == "x\n"
    stub_command("sacct", "echo '1|RUNNING'")
    monkeypatch.setattr(sacct, "UNANSWERED_HOLD_S", 0.0)
    assert run_sacct(["-j", "1"]) == "1|RUNNING\n"
