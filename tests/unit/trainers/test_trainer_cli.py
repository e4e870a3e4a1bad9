"""`drosweep train`: bad input is one clear line and exit code 2; a short real Avila training."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainers.data import load_avila
from trainers.model import MLP


def _train(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drosweep", "train", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "message"), [
    (["-t", "robust", "-r", "-0.1"], "radius must be a finite number >= 0"),
    (["-t", "sharpness", "-r", "0.1"], "unknown method 'sharpness'"),
    (["-t", "robust", "-r", "0"], "method 'robust' needs a radius > 0"),
    (["-t", "regular", "-r", "0", "--epochs", "0"], "'epochs' must be a positive integer"),
    (["-t", "regular", "-r", "0", "-d", "tpu"], "device must be 'cpu', 'cuda' or 'auto'"),
])
def test_bad_arguments(args: list[str], message: str, tmp_path: Path) -> None:
    result = _train(*args, "-s", str(tmp_path / "out"), "-i", "0", "--dataset", "synthetic")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_data_and_unwritable_folder(tmp_path: Path) -> None:
    result = _train("-t", "regular", "-r", "0", "-s", str(tmp_path / "out"), "-i", "0",
                    "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "drosweep data fetch" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    blocked = tmp_path / "file"
    blocked.write_text("x")
    result = _train("-t", "regular", "-r", "0", "-s", str(blocked / "out"), "-i", "0",
                    "--dataset", "synthetic")
    assert result.returncode == 2 and "not writable" in result.stderr


def test_short_real_avila_training(avila_data_dir: Path, tmp_path: Path) -> None:
    """Two epochs of regular training on Avila beat the majority class (41% of the test set)."""
    result = _train("-t", "regular", "-r", "0", "-s", str(tmp_path), "-i", "1", "--epochs", "2",
                    "--data-dir", str(avila_data_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "210 steps" in result.stdout
    model = MLP()
    model.load_state_dict(torch.load(tmp_path / "eps_0.0_trial_1.pt", weights_only=True))
    data = load_avila(avila_data_dir)
    with torch.no_grad():
        acc = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    majority = data.y_test.bincount().max().item() / len(data.y_test)
    assert acc > majority + 0.05, (acc, majority)


def test_fused_kernel_refused_on_the_cpu(tmp_path: Path) -> None:
    """Without CUDA (and outside the test interpreter) an explicit fused robust kernel is one
    line and exit 2, nothing written; the default (auto) trains with the chunked pass."""
    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the fused kernel runs here")
    result = _train("-t", "robust", "-r", "0.1", "-s", str(tmp_path / "out"), "-i", "0",
                    "--dataset", "synthetic", "--robust-kernel", "fused",
                    env={"TRITON_INTERPRET": "0"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fused robust kernel runs on CUDA" in lines[0]
    assert not (tmp_path / "out").exists()
