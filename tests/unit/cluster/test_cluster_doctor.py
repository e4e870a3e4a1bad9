"""`drosweep doctor` on a machine without CUDA: the CPU half runs, says what it skipped, and
writes a calibration file the cost model reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cluster.doctor as doctor
from cluster import calibration
from drosweep.cli import main
from trainers.spec import Method


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA report")
def test_doctor_quick_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    # the real checks and timings, on shrunken steps so the test takes seconds
    monkeypatch.setattr(doctor, "BATCH", 4)
    monkeypatch.setattr(doctor, "TIMING_OVERRIDES", {"langevin_points": 4, "pgd_steps": 2,
                                                     "n_base": 8})
    out = tmp_path / "cal.json"
    assert main(["doctor", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for method in Method:
        assert f"resume {method.value:<11} bit-identical" in text
    assert "float32_matmul_precision=highest" in text and "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE" in text
    assert "skipped       every CUDA check and timing (no CUDA device here)" in text
    assert "skipped       CUDA graph replays against eager steps (no CUDA device here)" in text
    for stage in ("regular", "adversarial-pgd", "langevin-trajectory"):
        assert f"host waits {stage:<20} none" in text
    assert "skipped       robust eps=0.3 timings (--quick)" in text
    assert "doctor: all checks passed" in text
    cal = calibration.load(out)
    assert cal.device_model.endswith("threads)") or cal.device_model.endswith("thread)")
    got = {(r.method, r.radius, r.pack) for r in cal.rates}
    assert got == {(Method.ROBUST, 0.01, 1), (Method.REGULAR, 0.0, 1), (Method.REGULAR, 0.0, 8),
                   (Method.ADVERSARIAL, 0.1, 1), (Method.ADVERSARIAL, 0.1, 8),
                   (Method.LANGEVIN, 0.1, 1)}
    assert all(r.seconds_per_step > 0 for r in cal.rates)
    assert cal.seconds_per_step(Method.ADVERSARIAL, 0.1, 8) is not None


def test_doctor_refuses_cuda_without_cuda(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert main(["doctor", "--device", "cuda", "--out", str(tmp_path / "c.json")]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()
