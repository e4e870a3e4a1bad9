"""The CUDA path's logic, checked on the CPU: local GPUs, pinned precision, resume elsewhere."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from cluster.executors.local import LocalGpus, local_gpus
from common.atomic import atomic_torch_save_verified, torch_load_verified
from trainers.checkpoint import environment_change
from trainers.device import FP32, TF32_OVERRIDE, TF32_OVERRIDE_ENV, pin_precision, tf32_override
from trainers.loop import TrainPaths, train
from trainers.spec import Method, SpecError, TrainSettings, TrainSpec


def _submitit_visible(gpus: LocalGpus) -> str:
    """CUDA_VISIBLE_DEVICES as submitit's LocalExecutor sets it from these parameters."""
    chosen = range(gpus.gpus) if gpus.visible == () else gpus.visible[:gpus.gpus]
    return ",".join(str(k) for k in chosen)


def test_local_cuda_task_sees_the_gpus_this_process_sees() -> None:
    # --device cuda, or auto with CUDA present: never CUDA_VISIBLE_DEVICES=""
    for device, count in (("cuda", 1), ("auto", 1), ("cuda", 0)):
        gpus = local_gpus(device, count, {})
        assert _submitit_visible(gpus) != "" and not gpus.setup, (device, count)
    assert _submitit_visible(local_gpus("auto", 4, {})) == "0,1,2,3"
    assert _submitit_visible(local_gpus("cuda", 4, {"CUDA_VISIBLE_DEVICES": "2, 5"})) == "2,5"
    uuid = local_gpus("cuda", 1, {"CUDA_VISIBLE_DEVICES": "GPU-8f1c"})
    assert uuid.setup == ("export CUDA_VISIBLE_DEVICES=GPU-8f1c",)
    # CPU tasks (and auto without CUDA) see no GPU
    assert local_gpus("cpu", 2, {}) == LocalGpus() == local_gpus("auto", 0, {})
    assert _submitit_visible(LocalGpus()) == ""


def test_precision_is_pinned_and_the_tf32_override_refused_unless_opted_in() -> None:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    try:
        assert pin_precision(environ={}) == FP32
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "highest"
        for off in ("", "0", "false", "No"):
            assert tf32_override({TF32_OVERRIDE_ENV: off}) is None
            assert pin_precision(environ={TF32_OVERRIDE_ENV: off}) == FP32
        with pytest.raises(SpecError, match=f"{TF32_OVERRIDE_ENV}='1'.*allow_tf32_override"):
            pin_precision(environ={TF32_OVERRIDE_ENV: "1"})
        assert pin_precision(True, environ={TF32_OVERRIDE_ENV: "1"}) == TF32_OVERRIDE
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.set_float32_matmul_precision("highest")


def _spec(**over: object) -> TrainSpec:
    settings = TrainSettings.from_dict({"epochs": 2, "temp_steps": 10, "langevin_points": 6,
                                        "chunk_size": 512, **over})
    return TrainSpec(Method.LANGEVIN, 0.1, 3, settings, "synthetic")


def test_training_refuses_the_override_in_one_line(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TF32_OVERRIDE_ENV, "1")
    paths = TrainPaths(tmp_path / "m.pt", tmp_path / "c.pt")
    with pytest.raises(SpecError) as info:
        train(_spec(max_steps=1), paths, progress=False)
    assert "\n" not in str(info.value) and not paths.checkpoint.exists()
    result = train(_spec(max_steps=1, allow_tf32_override=True), paths, progress=False)
    assert result.precision == TF32_OVERRIDE


def test_checkpoint_from_cuda_resumes_on_the_cpu(tmp_path: Path) -> None:
    """A checkpoint records device and precision but no generator state: one written on CUDA
    resumes on the CPU with one line saying what differs, and draws what it would have drawn."""
    straight = TrainPaths(tmp_path / "a" / "m.pt", tmp_path / "a" / "c.pt")
    done = train(_spec(), straight, progress=False)
    assert done.finished and done.precision == FP32
    paths = TrainPaths(tmp_path / "b" / "m.pt", tmp_path / "b" / "c.pt")
    calls = iter(range(100))
    assert not train(_spec(), paths, progress=False, should_stop=lambda: next(calls) >= 4).finished
    ck = torch_load_verified(paths.checkpoint)
    assert "rng" not in ck and ck["device"] == "cpu" and ck["precision"] == FP32
    ck["device"], ck["device_model"] = "cuda", "NVIDIA H100 80GB HBM3"
    atomic_torch_save_verified(ck, paths.checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = train(_spec(), paths, progress=False)
    lines = [str(w.message) for w in caught if "resuming" in str(w.message)]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "'cuda' -> 'cpu'" in lines[0] and "float rounding" in lines[0]
    assert resumed.finished and resumed.resumed_from == 5
    a = torch.load(straight.model, weights_only=True)
    b = torch.load(paths.model, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # same device here: bit-identical


def test_environment_change_names_only_what_differs() -> None:
    saved = {"step": 7, "device": "cpu", "device_model": "x", "precision": FP32}
    assert environment_change(saved, {"device": "cpu", "device_model": "x",
                                      "precision": FP32}) is None
    assert environment_change({"step": 1}, {"device": "cuda"}) is None  # not recorded
    line = environment_change(saved, {"device": "cpu", "device_model": "x",
                                      "precision": TF32_OVERRIDE})
    assert line is not None and "precision" in line and "device" not in line
