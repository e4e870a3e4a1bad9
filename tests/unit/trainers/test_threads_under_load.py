"""Robust training is bit-identical on a busy CPU: concurrent runs, and a run killed and resumed.

A trial's weights must not depend on what else the machine runs: each training process fixes its
thread counts where it starts (common.determinism, trainers.device.pin_threads), so no library
sizes its parallel regions, and with them the rounding of its reductions, by the load."""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common.determinism import FIXED_THREADS_ENV
from drosweep.cli import main

ROOT = Path(__file__).parents[3]
TRAIN = ["-m", "drosweep", "train", "-t", "robust", "-r", "0.01", "-i", "5", "--dataset",
         "synthetic", "--max-steps", "8", "--checkpoint-every", "2", "--batch-size", "10",
         "--train-subset", "100", "--no-progress"]
MODEL = "eps_0.01_trial_5.pt"


def _mkl_dynamic() -> int | None:
    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        return int(ctypes.CDLL(str(lib)).mkl_serv_get_dynamic())
    except (OSError, AttributeError):
        return None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FIXED_THREADS_ENV}
    env.pop("OMP_NUM_THREADS", None)  # torch's default threads, as a user's run has them
    return env


def _start(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *TRAIN, "-s", str(folder)], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_training_process_fixes_its_threads(tmp_path: Path) -> None:
    if _mkl_dynamic() is None:
        pytest.skip("torch is not built with MKL here")
    code = ("import ctypes, torch; from pathlib import Path\n"
            "from trainers.loop import TrainPaths, train\n"
            "from trainers.spec import Method, TrainSettings, TrainSpec\n"
            "f = ctypes.CDLL(str(Path(torch.__file__).parent / 'lib' / 'libtorch_cpu.so'))"
            ".mkl_serv_get_dynamic\n"
            "before = f()\n"
            "s = TrainSettings.from_dict({'epochs': 1, 'max_steps': 1, 'batch_size': 50})\n"
            f"d = Path({str(tmp_path)!r})\n"
            "train(TrainSpec(Method.REGULAR, 0.0, 1, s, 'synthetic'),"
            " TrainPaths(d / 'm.pt', d / 'c.pt'), progress=False)\n"
            "print(before, f())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), text=True,
                         capture_output=True, check=True).stdout.split()
    assert out == ["1", "0"]  # MKL's default is dynamic; training switched it off


def test_the_cli_fixes_the_thread_environment_before_torch_loads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key in FIXED_THREADS_ENV:
        monkeypatch.delenv(key, raising=False)
    assert main(["status", "/nonexistent/study.toml"]) == 2
    assert all(os.environ.get(k) == v for k, v in FIXED_THREADS_ENV.items())


def test_concurrent_robust_runs_and_a_killed_one_are_bit_identical(tmp_path: Path) -> None:
    """Three runs of one robust trial at once on the shared cores, and a fourth killed with
    SIGKILL after its first checkpoint and resumed while the others still run: one model."""
    runs = [_start(tmp_path / f"run{i}") for i in range(3)]
    victim_dir = tmp_path / "killed"
    victim = _start(victim_dir)
    checkpoint = victim_dir / (MODEL[:-3] + ".ckpt")
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (victim_dir / MODEL).exists()
    resumed = _start(victim_dir)
    for proc in (*runs, resumed):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    shas = {_sha(tmp_path / f"run{i}" / MODEL) for i in range(3)} | {_sha(victim_dir / MODEL)}
    assert len(shas) == 1
    assert not [p for p in victim_dir.iterdir() if p.name.endswith((".tmp", ".lock"))]
