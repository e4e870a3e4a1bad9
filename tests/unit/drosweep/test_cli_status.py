"""`status --detailed`, progress files and heartbeats (live local tasks), and `| head`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cluster import TrialState, study_status, submit
from drosweep.cli import main
from jobs import Paths, expand, load_study, run_pack, write_failed
from jobs.heartbeat import (
    HEARTBEAT_STALE_S,
    Beat,
    BeatState,
    Heartbeat,
    _ps_start,
    process_start,
    read_beat,
)
from jobs.pack import TaskPack
from studies import write_study
from trainers.progress import read_progress

OPS: dict[str, Any] = {"name": "ops", "methods": ["regular", "robust"], "radii": [0.01, 0.02],
                       "trials": 2, "training": {"epochs": 1, "max_steps": 3,
                                                 "checkpoint_every": 1, "batch_size": 20}}


def test_progress_file_follows_the_checkpoint(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, **OPS))
    paths = Paths(study.root)
    trial = next(t for t in expand(study) if t.method.value == "robust")
    calls = iter([False, False, True])  # polled before the batch, then after each step
    run_pack(TaskPack(str(study.root), (trial,), device="cpu"), should_stop=lambda: next(calls))
    progress = read_progress(paths.progress(trial))
    assert progress is not None and (progress.step, progress.total) == (2, 3)
    assert not progress.finished
    run_pack(TaskPack(str(study.root), (trial,), device="cpu"))
    progress = read_progress(paths.progress(trial))
    assert progress is not None and (progress.step, progress.finished) == (3, True)


def test_heartbeat_while_training_and_gone_after(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, **OPS))
    paths = Paths(study.root)
    robust = [t for t in expand(study) if t.method.value == "robust" and t.radius == 0.01]
    regular = [t for t in expand(study) if t.method.value == "regular"]
    seen: list[dict[str, BeatState | None]] = []

    def look() -> bool:
        beats = {t.key: read_beat(paths, t.key) for t in robust + regular}
        seen.append({k: b.state if b is not None else None for k, b in beats.items()})
        return False

    run_pack(TaskPack(str(study.root), tuple(regular + robust), device="cpu"), should_stop=look)
    first, last = seen[1], seen[-1]  # seen[0]: polled before the first batch
    assert all(first[t.key] is BeatState.TRAINING for t in regular)
    assert all(first[t.key] is BeatState.WAITING for t in robust)
    assert all(last[t.key] is None for t in regular)  # done: its heartbeat went at once
    assert all(last[t.key] is BeatState.TRAINING for t in robust)
    assert not list(paths.runs.rglob("heartbeat.json"))


def test_beat_liveness() -> None:
    now = time.time()
    me = socket.gethostname()
    beat = Beat("k", BeatState.TRAINING, me, os.getpid(), None, now, now)
    assert beat.live(now)
    assert not beat.live(now + HEARTBEAT_STALE_S + 1)                  # stale
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not Beat("k", BeatState.TRAINING, me, dead.pid, None, now, now).live(now)
    other = Beat("k", BeatState.TRAINING, "another-node", dead.pid, None, now, now)
    assert other.live(now)               # another host: freshness is all we can check


def test_a_reused_pid_is_not_the_task(tmp_path: Path) -> None:
    """A task killed without cleanup leaves a fresh heartbeat; when another process gets its pid,
    the recorded start time tells them apart (the pid alone would keep the trial running)."""
    now, me = time.time(), socket.gethostname()
    task = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(1.1)  # start times are counted in clock ticks (/proc) or seconds (ps)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        task_start, other_start = process_start(task.pid), process_start(other.pid)
        assert task_start is not None and other_start is not None
        assert task_start == process_start(task.pid)  # stable for one process
        assert Beat("k", BeatState.TRAINING, me, task.pid, None, now, now,
                    pid_start=task_start).live(now)
        # as if `other` had been given the pid the task wrote down: the start times differ
        assert task_start != other_start
        assert not Beat("k", BeatState.TRAINING, me, other.pid, None, now, now,
                        pid_start=task_start).live(now)
        # written by an older drosweep (no start time): the pid check alone, as before
        assert Beat("k", BeatState.TRAINING, me, other.pid, None, now, now).live(now)
        assert _ps_start(task.pid) is not None  # the fallback where /proc is missing
    finally:
        task.kill()
        other.kill()
        task.wait()
        other.wait()
    assert process_start(task.pid) is None and _ps_start(task.pid) is None
    # what a task writes: its own start time, read back from the file
    study = load_study(write_study(tmp_path, **OPS))
    paths = Paths(study.root)
    key = expand(study)[0].key
    with Heartbeat(paths, [key], every_s=3600):
        beat = read_beat(paths, key)
        assert beat is not None and beat.pid == os.getpid()
        assert beat.pid_start == process_start(os.getpid()) is not None and beat.live()


def test_live_local_task_is_running_and_never_replanned(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, **OPS))
    paths = Paths(study.root)
    specs = expand(study)
    training, waiting = specs[0], specs[1]
    with Heartbeat(paths, [training.key, waiting.key], every_s=3600) as beat:
        beat.training([training.key])
        status = study_status(study)
        states = {t.trial.key: t.state for t in status.trials}
        assert states[training.key] is TrialState.RUNNING
        assert states[waiting.key] is TrialState.PENDING
        assert {t.host for t in status.trials if t.trial.key == training.key} == {
            socket.gethostname()}
        planned = submit(study, "local", dry_run=True).plan.trials
        assert {t.key for t in planned} == {t.key for t in specs} - {training.key, waiting.key}
    # the task has ended: its trials are missing again and planned again
    assert study_status(study).counts[TrialState.MISSING] == len(specs)
    # a heartbeat left by a killed process on this host does not count
    Paths(study.root).heartbeat(training.key).write_text(json.dumps({
        "key": training.key, "state": "training", "host": socket.gethostname(),
        "pid": 2 ** 22 + 7, "slurm_job_id": None, "started_at": time.time(),
        "updated_at": time.time()}))
    assert study_status(study).counts[TrialState.MISSING] == len(specs)


def test_status_detailed_rows_and_filters(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = write_study(tmp_path, **OPS)
    study = load_study(f)
    paths = Paths(study.root)
    specs = expand(study)
    robust = next(t for t in specs if t.method.value == "robust" and t.radius == 0.02)
    write_failed(paths, robust, RuntimeError("CUDA out of memory\nmore lines"))
    trained = next(t for t in specs if t.method.value == "robust" and t.radius == 0.01)
    run_pack(TaskPack(str(study.root), (trained,), device="cpu"),
             should_stop=iter([False, True]).__next__)  # stop after one step
    assert main(["status", str(f), "--detailed"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["key", "state", "job", "host", "steps"]
    assert len(out) == 1 + len(specs)
    line = next(ln for ln in out if ln.startswith(robust.key))
    assert line.split()[1] == "failed" and line.endswith("RuntimeError: CUDA out of memory")
    assert socket.gethostname()[:16] in line
    assert next(ln for ln in out if ln.startswith(trained.key)).split()[4] == "1/3"

    assert main(["status", str(f), "-v", "--method", "robust", "--radius", "0.02"]) == 0
    keys = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]]
    assert keys == [t.key for t in specs if t.method.value == "robust" and t.radius == 0.02]

    assert main(["status", str(f), "--state", "failed", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in body["trials"]] == [robust.key]
    assert body["trials"][0]["error"] == "RuntimeError: CUDA out of memory"
    assert body["counts"]["failed"] == 1

    # a filter without -v narrows the summary table; it does not switch to the trial list
    assert main(["status", str(f), "--method", "robust"]) == 0
    out = capsys.readouterr().out.splitlines()
    n_robust = sum(t.method.value == "robust" for t in specs)
    assert out[0].startswith(f"study {study.name} at ") and f": {n_robust} trials;" in out[0]
    methods = {t.method.value for t in specs}
    rows = [ln.split()[0] for ln in out[2:] if ln.split() and ln.split()[0] in methods]
    assert rows and set(rows) == {"robust"} and len(methods) > 1
    assert main(["status", str(f), "--method", "robust", "--radius", "0.02", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["total"] == sum(t.method.value == "robust" and t.radius == 0.02 for t in specs)
    assert body["counts"]["failed"] == 1


@pytest.mark.parametrize("argv, message", [
    (["--radius", "0.3"], "radius 0.3 is not in study ops"),
    (["--method", "langevin"], "method 'langevin' is not in study ops"),
    (["--trials", "0-5"], "not within the study's trials 0-1"),
    (["--trials", "x"], "expected indices and ranges"),
])
def test_bad_selection_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   argv: list[str], message: str) -> None:
    f = write_study(tmp_path, **OPS)
    assert main(["status", str(f), "-v", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_status_survives_a_closed_pipe(tmp_path: Path) -> None:
    f = write_study(tmp_path, **{**OPS, "trials": 800})  # ~3,200 lines: more than a pipe buffer
    cli = Path(sys.executable).with_name("drosweep")
    proc = subprocess.Popen([str(cli), "status", str(f), "--detailed"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_status_loads_no_executor() -> None:
    """`status` imports neither submitit nor the executors (nor torch): it stays fast on a login
    node; the executors the parsers offer are the ones cluster.executors implements."""
    code = ("import sys; from drosweep.cli import build_parser; build_parser('status'); "
            "print(sorted(m for m in ('submitit', 'torch', 'cluster.executors.base', "
            "'cluster.executors.slurm', 'cluster.executors.local', 'cluster.executors.debug', "
            "'cluster.submission', 'filelock') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    from cluster.executors import EXECUTORS, executor_class

    assert all(executor_class(name).name == name for name in EXECUTORS)

