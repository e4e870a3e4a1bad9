"""Resuming gives bit-identical weights to an uninterrupted run (CPU), whatever stops the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainers.checkpoint import CheckpointError, load_checkpoint
from trainers.loop import TrainPaths, train
from trainers.spec import Method, SpecError, TrainSettings, TrainSpec

SMALL = {"epochs": 3, "temp_steps": 10, "pgd_steps": 5, "langevin_points": 12,
         "adv_start_epoch": 1, "checkpoint_every": 1000, "n_base": 20, "chunk_size": 4096}


def _spec(method: Method, **over: object) -> TrainSpec:
    settings = TrainSettings.from_dict({**SMALL, **over})
    return TrainSpec(method, 0.0 if method is Method.REGULAR else 0.1, 5, settings, "synthetic")


def _paths(folder: Path) -> TrainPaths:
    return TrainPaths(folder / "model.pt", folder / "ckpt.pt")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def _assert_identical(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize("method", list(Method))
def test_stop_and_resume_is_bit_identical(method: Method, tmp_path: Path) -> None:
    spec = _spec(method)
    full = train(spec, _paths(tmp_path / "full"), progress=False)
    assert full.finished and full.steps == 3 * 6
    calls = {"n": 0}

    def stop_after_7() -> bool:
        calls["n"] += 1
        return calls["n"] == 7

    part = train(spec, _paths(tmp_path / "part"), progress=False, should_stop=stop_after_7)
    assert not part.finished and part.steps == 7
    assert not (tmp_path / "part" / "model.pt").exists()
    rest = train(spec, _paths(tmp_path / "part"), progress=False)
    assert rest.finished and rest.resumed_from == 7 and rest.steps == full.steps
    _assert_identical(tmp_path / "full" / "model.pt", tmp_path / "part" / "model.pt")
    assert rest.model_sha256 == full.model_sha256


def test_max_steps_counts_across_resumes(tmp_path: Path) -> None:
    first = train(_spec(Method.REGULAR, max_steps=4), _paths(tmp_path), progress=False)
    assert first.finished and first.steps == 4
    second = train(_spec(Method.REGULAR, max_steps=10), _paths(tmp_path), progress=False)
    assert second.resumed_from == 4 and second.steps == 10
    again = train(_spec(Method.REGULAR, max_steps=10), _paths(tmp_path), progress=False)
    assert again.steps == 10 and again.resumed_from == 10 and again.finished


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path: Path) -> None:
    spec = _spec(Method.REGULAR, checkpoint_every=3)
    paths = _paths(tmp_path / "a")
    calls = {"n": 0}

    def stop_after_8() -> bool:
        calls["n"] += 1
        return calls["n"] == 8

    train(spec, paths, progress=False, should_stop=stop_after_8)
    assert paths.previous_checkpoint.exists()
    blob = paths.checkpoint.read_bytes()
    paths.checkpoint.write_bytes(blob[: len(blob) // 2])  # a torn write
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        ck = load_checkpoint(paths.checkpoint, paths.previous_checkpoint, spec)
    assert ck is not None and ck["step"] == 6
    with pytest.warns(UserWarning):
        resumed = train(spec, paths, progress=False)
    full = train(spec, _paths(tmp_path / "b"), progress=False)
    assert resumed.resumed_from == 6
    _assert_identical(paths.model, tmp_path / "b" / "model.pt")
    assert full.steps == resumed.steps


def test_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    train(_spec(Method.REGULAR, max_steps=2), paths, progress=False)
    with pytest.raises(SpecError, match=r"setting lr=0\.2, this run has 0\.1"):
        train(_spec(Method.REGULAR, max_steps=4, lr=0.1), paths, progress=False)
    paths.checkpoint.write_bytes(b"not a checkpoint")
    paths.previous_checkpoint.unlink(missing_ok=True)
    with pytest.warns(UserWarning, match="trying the previous checkpoint"):
        assert load_checkpoint(paths.checkpoint, paths.previous_checkpoint, _spec(Method.REGULAR)) is None
    from common.atomic import atomic_torch_save_verified
    from trainers.checkpoint import _read
    torch.save({"format": "something-else"}, paths.checkpoint)
    with pytest.raises(CheckpointError, match="no content hash"):
        _read(paths.checkpoint)
    atomic_torch_save_verified({"format": "something-else"}, paths.checkpoint)
    with pytest.raises(CheckpointError, match="not a drosweep checkpoint"):
        _read(paths.checkpoint)


def _cli(save: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "drosweep", "train", "-t", "robust", "-r", "0.05", "-d", "cpu",
            "-s", str(save), "-i", "3", "--dataset", "synthetic", "--epochs", "2", "--batch-size", "10",
            "--checkpoint-every", "4", "--no-progress", *extra]


def test_sigkill_mid_training_then_resume_is_bit_identical(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = subprocess.run(_cli(tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    save = tmp_path / "killed"
    proc = subprocess.Popen(_cli(save), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = save / "eps_0.05_trial_3.ckpt.prev"  # two checkpoints written: well into training
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "training ended before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (save / "eps_0.05_trial_3.pt").exists()
    resumed = subprocess.run(_cli(save), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    _assert_identical(tmp_path / "ref" / "eps_0.05_trial_3.pt", save / "eps_0.05_trial_3.pt")
    from common.atomic import torch_load_verified
    ck = torch_load_verified(save / "eps_0.05_trial_3.ckpt")
    assert ck["step"] == 120 and ck["finished"]
