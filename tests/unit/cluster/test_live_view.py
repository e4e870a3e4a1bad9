"""The live view of a run: progress lines in the task logs, an ETA from the measured rates, times
in the unit that reads, the `stopped` state, cancelling one trial of a local run, and one line
for a killed local task."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from cluster import TrialState, ledger, study_status, submit
from drosweep.cli import main
from drosweep.render import duration
from jobs import Paths, expand, load_study, run_pack
from jobs.heartbeat import BeatState, Heartbeat, read_beat
from jobs.pack import TaskPack
from studies import write_study
from trainers.progress import (
    PROGRESS_LINE_EVERY_S,
    Progress,
    ProgressLine,
    ProgressLog,
    read_progress,
)

CLI = str(Path(sys.executable).with_name("drosweep"))


def small_study(tmp_path: Path, trials: int, steps: int) -> Path:
    """`trials` regular trials of `steps` steps, one at a time (one per pack, one pack at once)."""
    return write_study(tmp_path, name="live", trials=trials,
                       training={"max_steps": steps, "checkpoint_every": 20},
                       cluster={"max_pack": 1, "local_parallelism": 1})


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (0.0, "0 s"), (0.3, "<1 s"), (3.2, "3 s"), (42.0, "42 s"), (59.4, "59 s"), (60.0, "1.0 min"),
    (210.0, "3.5 min"), (1500.0, "25 min"), (3569.0, "59 min"), (3600.0, "1.0 h"),
    (7560.0, "2.1 h"), (500_000.0, "139 h")])
def test_duration_reads_in_its_unit(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_plan_shows_small_times_in_seconds(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    f = small_study(tmp_path, 3, 50)
    assert main(["plan", str(f)]) == 0
    out = capsys.readouterr().out
    header = next(ln for ln in out.splitlines() if ln.startswith("method"))
    assert "per trial" in header and "GPU time" in header
    row = next(ln for ln in out.splitlines() if ln.startswith("regular")).split()
    assert row[-2] == "s" and "0.000" not in out  # e.g. `1 s`, never a fraction of an hour


def test_eta_follows_the_measured_rate_of_running_trials(tmp_path: Path) -> None:
    """Running trials: steps left at their measured rate; queued ones: a running trial's whole
    time (its task's start-up included), not the cost model's; spread over the tasks that run at
    once: `max_running` on SLURM, `local_parallelism` for a local run."""
    f = small_study(tmp_path, 3, 1000)
    study = load_study(f)
    paths = Paths(study.root)
    running, queued, stopped = expand(study)
    now = time.time()
    # 250 of 1000 steps in 100 s, written 10 s ago: 300 s at that rate, 290 s from now
    paths.progress(running).parent.mkdir(parents=True)
    paths.progress(running).write_text(json.dumps(asdict(Progress(
        step=200, total=1000, epoch=3, finished=False, updated_at=now - 10, live_step=250,
        wall_s=100.0))))
    # a trial stopped part way: its checkpoint makes it `stopped`, outside the ETA
    paths.checkpoint(stopped).parent.mkdir(parents=True)
    paths.checkpoint(stopped).write_bytes(b"checkpoint")
    with Heartbeat(paths, [running.key, queued.key], every_s=3600) as beat:
        beat.training([running.key])
        body = json.loads(paths.heartbeat(running).read_text())
        body["started_at"] = now - 120  # its task started 2 min ago: 410 s for the whole trial
        paths.heartbeat(running).write_text(json.dumps(body))
        status = study_status(study, now=now)
        states = {t.trial.key: t.state for t in status.trials}
        assert states == {running.key: TrialState.RUNNING, queued.key: TrialState.PENDING,
                          stopped.key: TrialState.STOPPED}
        # max_running allows both at once: (290 + 410) / 2, and no less than the running 290
        assert study.cluster.max_running >= 2
        assert status.eta_s == pytest.approx((290 + 410) / 2, abs=1)
        assert status.groups[0].eta_s == pytest.approx(status.eta_s)
        # submitted to a local run that trains one task at a time: one after the other
        ledger.append(paths.ledger, ledger.Submission(
            submission_id="s", executor="local", array_id="local-1", submitted_at=ledger.now_iso(),
            reason="submit", fingerprint=study.fingerprint,
            tasks=(ledger.TaskRecord(0, "local-1_0", (running.key,)),
                   ledger.TaskRecord(1, "local-1_1", (queued.key,)))))
        assert study.cluster.local_parallelism == 1
        assert study_status(study, now=now).eta_s == pytest.approx(290 + 410, abs=1)
        # without a rate (an older progress file) the running trial counts half the estimate
        paths.progress(running).write_text(json.dumps(asdict(Progress(
            step=200, total=1000, epoch=3, finished=False, updated_at=now))))
        older = study_status(study, now=now)
        assert older.eta_s != pytest.approx(290 + 410, abs=1)


def test_eta_never_ends_before_the_longest_running_trial(tmp_path: Path) -> None:
    f = small_study(tmp_path, 2, 1000)
    study = load_study(f)
    paths = Paths(study.root)
    a, b = expand(study)
    now = time.time()
    for trial, wall in ((a, 10.0), (b, 1000.0)):  # 100 of 1000 steps: 90 s and 9000 s left
        paths.progress(trial).parent.mkdir(parents=True)
        paths.progress(trial).write_text(json.dumps(asdict(Progress(
            step=100, total=1000, epoch=1, finished=False, updated_at=now, live_step=100,
            wall_s=wall))))
    with Heartbeat(paths, [a.key, b.key], every_s=3600) as beat:
        beat.training([a.key, b.key])
        assert study_status(study, now=now).eta_s == pytest.approx(9000)


class _Flushes(io.StringIO):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_progress_lines_rule() -> None:
    """A line after the first step, then every 5% of the steps or 30 s, whichever comes first,
    and at the last step; each flushed at once."""
    clock = [0.0]
    out = _Flushes()
    log = ProgressLog(1000, 0, out=out, clock=lambda: clock[0])
    lines = []
    for step in range(1, 1001):
        clock[0] += 0.015625 if step < 600 else 1.0  # fast at first (exact in binary), then 1 s
        if log.due(step):
            log.emit(ProgressLine("regular eps=0 seed=1", step, 1000, 0, 0.5, 100.0,
                                  log.elapsed()))
            lines.append(step)
    assert lines[:3] == [1, 51, 101]               # the first step, then every 50 (5%)
    slow = {b - a for a, b in itertools.pairwise(lines) if a > 601 and b < 1000}
    assert slow == {int(PROGRESS_LINE_EVERY_S)}    # a step a second: one every 30 s instead
    assert lines[-1] == 1000
    text = out.getvalue().splitlines()
    assert len(text) == len(lines) == out.flushes  # a task's stdout is a file: each flushed
    assert text[0].startswith("progress regular eps=0 seed=1: step 1/1000 (0%) epoch 0 loss ")
    assert "samples/s" in text[0]
    kept = ProgressLine("robust", 5, 10, 0, 0.5, 1.0, 1.0, {"mean": 12.5, "max": 30, "steps": 5})
    assert "kept 12.5/step (max 30)" in kept.text()


def test_stopped_is_a_state_of_its_own(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A trial with a checkpoint, not live and not done is `stopped` (not `missing`, the word
    for never started), counted in the summary, with its steps in -v; resume trains it on."""
    f = small_study(tmp_path, 2, 40)
    study = load_study(f)
    trial, untouched = expand(study)
    run_pack(TaskPack(str(study.root), (trial,), device="cpu"),
             should_stop=iter([False] * 21 + [True]).__next__)  # stop after 21 steps
    status = study_status(study)
    assert {t.trial.key: t.state for t in status.trials} == {
        trial.key: TrialState.STOPPED, untouched.key: TrialState.MISSING}
    assert main(["status", str(f)]) == 0
    out = capsys.readouterr().out
    assert "stopped 1, missing 1;" in out.splitlines()[0]
    assert "stopped" in out.splitlines()[1].split()
    assert main(["status", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["stopped"] == 1
    assert main(["status", str(f), "-v"]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(trial.key))
    assert row.split()[1] == "stopped" and row.split()[4] == "21/40"
    planned = submit(study, "local", dry_run=True).plan.trials
    assert {t.key for t in planned} == {trial.key, untouched.key}


def _wait_training(paths: Paths, key: str, proc: subprocess.Popen[str]) -> int:
    """The pid of the task training `key`, once its first checkpoint is written."""
    end = time.monotonic() + 240
    while time.monotonic() < end:
        beat = read_beat(paths, key)
        progress = read_progress(paths.progress(key))
        if beat is not None and beat.state is BeatState.TRAINING \
                and progress is not None and progress.step > 0:
            return beat.pid
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    pytest.fail(f"{key} did not start training within 240 s")


def test_cancel_one_trial_of_a_local_run_the_others_finish(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real local run of 4 trials, one task each, one at a time: cancelling the running
    trial_0 stops its task only, cancelling the queued trial_2 takes it off the queue; trial_1
    and trial_3 train to DONE, and their task logs hold the trainer's progress lines."""
    f = small_study(tmp_path, 4, 1500)
    study = load_study(f)
    paths = Paths(study.root)
    keys = [t.key for t in expand(study)]
    proc = subprocess.Popen([CLI, "submit", str(f), "--executor", "local", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_training(paths, keys[0], proc)
        assert main(["cancel", str(f), keys[2]]) == 0
        out = capsys.readouterr().out
        assert "1 queued local trial(s): 1 trial(s) stop (" in out and keys[2] in out
        assert main(["cancel", str(f), keys[0]]) == 0
        out = capsys.readouterr().out
        assert "1 local process(es)" in out and f"1 trial(s) checkpoint and stop ({keys[0]})" \
            in out
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    status = {t.trial.key: t.state for t in study_status(study).trials}
    assert status == {keys[0]: TrialState.STOPPED, keys[1]: TrialState.DONE,
                      keys[2]: TrialState.MISSING, keys[3]: TrialState.DONE}, err
    assert proc.returncode == 130
    progress = read_progress(paths.progress(keys[0]))
    assert progress is not None
    assert err.strip().splitlines() == [
        f"drosweep submit: stopped: 2 of 4 trial(s) done, 1 checkpointed ({progress.step} steps "
        f"in all), 1 not started; go on with `drosweep resume {f} --executor local`"]
    assert not list(paths.root.rglob("heartbeat.json"))
    # the tasks' logs: the trainer's lines, flushed as it went, from the first step to the last
    lines = [ln for p in (paths.logs / "local").rglob("*_log.out")
             for ln in p.read_text().splitlines() if ln.startswith("progress regular eps=0 ")]
    assert sum(": step 1/1500 (0%) epoch 0 loss " in ln for ln in lines) == 3
    assert sum(": step 1500/1500 (100%) " in ln for ln in lines) == 2
    assert all("samples/s" in ln for ln in lines)
    assert len(lines) <= 3 * 22 + 30  # about every 5% of the steps, not one per step


def test_a_killed_local_task_is_one_line(tmp_path: Path) -> None:
    """SIGKILL of a local task: the run says which trial, how it ended and where the log is,
    not submitit's text about the result it could not load."""
    f = small_study(tmp_path, 1, 100000)
    study = load_study(f)
    paths = Paths(study.root)
    key = expand(study)[0].key
    proc = subprocess.Popen([CLI, "submit", str(f), "--executor", "local", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        pid = _wait_training(paths, key, proc)
        logs = paths.logs / "local"
        end = time.monotonic() + 60
        while not any("progress regular" in p.read_text() for p in logs.rglob("*_log.out")):
            assert time.monotonic() < end, "no progress line in the task's log within 60 s"
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{key}: task local-") and "was killed before it finished" in lines[0]
    assert "submitit" not in lines[0] and "pickle" not in lines[0]
    log = Path(lines[0].rsplit("; log ", 1)[1])
    assert log.is_file() and log.name.endswith("_log.err")
    assert "1 failure(s)" in out
    assert study_status(study).counts[TrialState.STOPPED] == 1
