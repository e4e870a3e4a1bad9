"""A local run seen from another shell: status, resume --dry-run, logs, cancel, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from drosweep.cli import main
from jobs import Paths, expand, load_study
from jobs.heartbeat import BeatState, read_beat
from studies import write_study

LIVE: dict[str, Any] = {"name": "live", "trials": 2,
                        "training": {"epochs": 100000, "checkpoint_every": 20},
                        "cluster": {"max_pack": 1, "local_parallelism": 1}}
CLI = str(Path(sys.executable).with_name("drosweep"))


def start_run(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, list[str]]:
    f = write_study(tmp_path, **LIVE)
    study = load_study(f)
    keys = [t.key for t in expand(study)]
    proc = subprocess.Popen([CLI, "submit", str(f), "--executor", "local", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group: a Ctrl-C of its own
    paths = Paths(study.root)
    end = time.monotonic() + 180
    while time.monotonic() < end:
        beat = read_beat(paths, keys[0])
        if beat is not None and beat.state is BeatState.TRAINING \
                and paths.progress(keys[0]).exists():
            return proc, f, keys
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the local run did not start training within 180 s")


def status_json(f: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    assert main(["status", str(f), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_cancel_a_local_run_from_another_shell(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    proc, f, keys = start_run(tmp_path)
    try:
        body = status_json(f, capsys, "-v")
        assert body["counts"]["running"] == 1 and body["counts"]["pending"] == 1
        assert {r["key"]: r["state"] for r in body["trials"]} == {keys[0]: "running",
                                                                  keys[1]: "pending"}
        assert main(["resume", str(f), "--executor", "local", "--dry-run"]) == 0
        assert "would submit 0 trial(s)" in capsys.readouterr().out
        assert main(["logs", str(f), keys[0], "--tail", "5"]) == 0
        out = capsys.readouterr().out
        assert f"{keys[0]}: local task local-" in out and "_log.out <==" in out
        assert main(["cancel", str(f), "--method", "regular"]) == 0
        assert "local process(es)" in capsys.readouterr().out
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("drosweep submit: stopped: 0 of 2 trial(s) done, 1 checkpointed")
    assert f"drosweep resume {f} --executor local" in lines[0]
    root = tmp_path / "root"
    assert not [p for p in (root / "logs").rglob("*") if "%j" in p.name]
    assert not list(root.rglob("heartbeat.json"))
    body = status_json(f, capsys, "-v")
    # the checkpointed trial is stopped (`missing` is the word for never started)
    assert body["counts"]["missing"] == 1 and body["counts"]["stopped"] == 1
    assert body["trials"][0]["steps"] > 0
    assert main(["cancel", str(f)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines == ["drosweep cancel: error: nothing live to cancel in study live"]


def test_ctrl_c_on_a_local_run_is_one_line(tmp_path: Path) -> None:
    proc, f, _ = start_run(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines() == [err.strip()]
    assert "1 checkpointed" in err and f"`drosweep resume {f} --executor local`" in err


def test_logs_and_cancel_refuse_bad_input(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = write_study(tmp_path, **LIVE)
    assert main(["logs", str(f), "robust/eps_0.1/trial_0"]) == 2
    assert "is not in study live" in capsys.readouterr().err
    assert main(["logs", str(f), "nonsense"]) == 2
    assert "invalid trial key" in capsys.readouterr().err
    assert main(["logs", str(f), "regular/eps_0/trial_1"]) == 0
    assert "never submitted" in capsys.readouterr().out
    assert main(["cancel", str(f), "regular/eps_0/trial_7"]) == 2
    assert main(["cancel", str(f)]) == 2
    assert "nothing live to cancel" in capsys.readouterr().err


def test_logs_follow_a_local_trial_until_it_stops(tmp_path: Path) -> None:
    """`logs -f` prints what the running task writes and returns by itself once the task has
    ended; a Ctrl-C ends it earlier in one line."""
    proc, f, keys = start_run(tmp_path)
    follow = subprocess.Popen([CLI, "logs", str(f), keys[0], "--follow"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    stopped = subprocess.Popen([CLI, "logs", str(f), keys[0], "-f"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        time.sleep(5)
        assert follow.poll() is None and stopped.poll() is None  # the trial trains: both wait
        os.killpg(stopped.pid, signal.SIGINT)  # Ctrl-C on the follower
        _, err = stopped.communicate(timeout=120)
        assert stopped.returncode == 130
        assert err.strip().splitlines() == ["drosweep logs: interrupted"], err
        os.killpg(proc.pid, signal.SIGINT)  # the run stops: its trials checkpoint, the task ends
        proc.communicate(timeout=300)
        out, err = follow.communicate(timeout=120)  # ends by itself: no trial of it is live
    finally:
        for p in (proc, follow, stopped):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert follow.returncode == 0, err
    assert out.startswith(f"{keys[0]}: local task local-") and "_log.out <==" in out
    logs = list((tmp_path / "root" / "logs" / "local").rglob("*_log.*"))
    assert logs
    for log in logs:  # what the task wrote last, after the follower had started, was printed
        lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
        assert not lines or lines[-1] in out, (log, lines[-1])


def test_logs_follow_ends_when_the_trial_is_done(tmp_path: Path) -> None:
    f = write_study(tmp_path, **{**LIVE, "trials": 1,
                                 "training": {"epochs": 100000, "checkpoint_every": 5,
                                              "max_steps": 120}})
    study = load_study(f)
    key = expand(study)[0].key
    paths = Paths(study.root)
    run = subprocess.Popen([CLI, "submit", str(f), "--executor", "local", "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    follow = None
    try:
        end = time.monotonic() + 180
        while read_beat(paths, key) is None and run.poll() is None:  # the task has started
            assert time.monotonic() < end, "the local run did not start within 180 s"
            time.sleep(0.2)
        follow = subprocess.Popen([CLI, "logs", str(f), key, "-f"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        run.communicate(timeout=600)
        out, err = follow.communicate(timeout=120)  # returns by itself once the trial is done
    finally:
        for p in (run, follow):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert run.returncode == 0 and paths.done(key).is_file()
    assert follow.returncode == 0, err
    assert out.startswith(f"{key}: local task local-")
