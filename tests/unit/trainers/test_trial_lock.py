"""A trial is held by one process; holding it, its temp files go at once, whatever their age."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.loop import TrainPaths, train
from trainers.spec import Method, TrainSettings, TrainSpec
from trainers.trial_lock import TrialBusyError, hold_trials, lock_path

SMALL = {"epochs": 2, "checkpoint_every": 2, "batch_size": 50}


def _spec() -> TrainSpec:
    return TrainSpec(Method.REGULAR, 0.0, 3, TrainSettings.from_dict(SMALL), "synthetic")


def _paths(folder: Path) -> TrainPaths:
    return TrainPaths(folder / "model.pt", folder / "ckpt.pt", folder / "progress.json")


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_fresh_temp_files_of_a_killed_write_go_when_the_trial_restarts(tmp_path: Path) -> None:
    paths = _paths(tmp_path / "t")
    first = train(_spec(), paths, progress=False, should_stop=lambda: True)
    assert not first.finished
    # what a kill inside each write leaves: a temp file of any size, seconds old
    for target in (paths.checkpoint, paths.previous_checkpoint, paths.model, paths.progress):
        assert target is not None
        (target.parent / f".{target.name}.k3x9q_ab.tmp").write_bytes(os.urandom(1000))
    assert len(_temps(paths.checkpoint.parent)) == 4
    assert train(_spec(), paths, progress=False).finished
    assert _temps(paths.checkpoint.parent) == []
    assert not lock_path(paths.checkpoint).exists()


def test_a_held_trial_is_refused_and_its_temp_files_are_left_alone(tmp_path: Path) -> None:
    paths = _paths(tmp_path / "t")
    paths.checkpoint.parent.mkdir()
    temp = paths.checkpoint.parent / f".{paths.checkpoint.name}.live0001.tmp"
    temp.write_bytes(b"a live writer's")
    with hold_trials([paths.checkpoint]):
        with pytest.raises(TrialBusyError, match="another process is training this trial"):
            train(_spec(), paths, progress=False)
        assert temp.exists() and not paths.checkpoint.exists()
    assert not lock_path(paths.checkpoint).exists()


def test_the_lock_dies_with_its_process_and_a_left_lock_file_never_blocks(tmp_path: Path) -> None:
    ck = tmp_path / "t" / "ckpt.pt"
    code = ("import os, sys; from pathlib import Path; from trainers.trial_lock import hold_trials\n"
            f"with hold_trials([Path({str(ck)!r})]): os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[3])
    assert proc.returncode == -9 and lock_path(ck).exists()  # killed holding it
    with hold_trials([ck]):
        pass
    assert not lock_path(ck).exists()


def test_a_refused_run_leaves_no_folder_behind(tmp_path: Path) -> None:
    spec = TrainSpec(Method.REGULAR, 0.0, 3, TrainSettings.from_dict(SMALL), "avila")
    with pytest.raises(Exception, match=r"avila|not found|data"):
        train(spec, _paths(tmp_path / "new" / "t"), data_dir=tmp_path / "no-data",
              progress=False)
    assert not (tmp_path / "new").exists()


def test_cli_train_of_a_held_trial_is_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "save"
    ck = folder / "eps_0.0_trial_0.ckpt"
    with hold_trials([ck]):
        proc = subprocess.run([sys.executable, "-m", "drosweep", "train", "-t", "regular", "-r",
                               "0", "-s", str(folder), "-i", "0", "--dataset", "synthetic",
                               "--epochs", "1", "--no-progress"],
                              capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "another process" in proc.stderr
