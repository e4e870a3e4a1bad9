"""The training device: which one to use, its arithmetic (pinned), and the name a measured rate is
valid for."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator

import torch

from common.determinism import pin_thread_env
from trainers.spec import SpecError


def resolve_device(device: str) -> torch.device:
    """'cpu', 'cuda[:i]' or 'auto' (CUDA when present); a CUDA request without CUDA is refused."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(f"device {device!r} requested but no CUDA device is available "
                        f"(use --device cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise SpecError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    try:
        return torch.device(device)
    except RuntimeError:
        raise SpecError(f"device must be 'cpu', 'cuda', 'cuda:<index>' or 'auto', "
                        f"got {device!r}") from None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_model(device: torch.device) -> str:
    """The device model a timing holds for: the GPU's name, or the CPU's model and the threads
    torch uses (a rate measured with 2 threads does not hold for 16)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{_cpu_name()} ({threads} thread{'s' if threads != 1 else ''})"


def pin_threads() -> int:
    """Fix this process's CPU thread counts where training starts; returns torch's threads.

    `torch.set_num_threads` also switches MKL's dynamic threads off (torch leaves them on until
    it is called: a plain `drosweep train` never called it), so every matmul and reduction runs
    on the same number of threads whatever the load (`common.determinism`)."""
    pin_thread_env()
    threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads limited to `threads` (a task's `cpus_per_task`) while inside; None
    leaves torch's default (every core). Local tasks that each take every core oversubscribe them,
    and a small model then spends its time handing work between threads."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Set in many GPU containers: makes cuBLAS use TF32 for fp32 matmuls whatever torch's flags say.
TF32_OVERRIDE_ENV = "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"
FP32 = "fp32"                    # IEEE fp32 matmuls (TF32 off, matmul precision "highest")
TF32_OVERRIDE = "tf32-override"  # the override variable is set and the run opted in


def tf32_override(environ: dict[str, str] | None = None) -> str | None:
    """The override variable's value when it is set to a truthy value, else None."""
    value = (os.environ if environ is None else environ).get(TF32_OVERRIDE_ENV)
    if value is None or value.strip().lower() in ("", "0", "false", "no", "off"):
        return None
    return value


def pin_precision(allow_tf32_override: bool = False,
                  environ: dict[str, str] | None = None) -> str:
    """Pin fp32 matmuls in this process (never inherit them) and return the precision label that
    checkpoints and DONE markers record. At T = 1e-4 a 1e-3 logit error reweights the smoothed
    max's samples by e^10, so TF32 is refused unless the run opts in (`allow_tf32_override`)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    value = tf32_override(environ)
    if value is None:
        return FP32
    if not allow_tf32_override:
        raise SpecError(f"{TF32_OVERRIDE_ENV}={value!r} makes CUDA fp32 matmuls run in TF32; "
                        f"unset it, or opt in with the setting allow_tf32_override = true")
    return TF32_OVERRIDE


def precision_flags() -> dict[str, object]:
    """What this process's matmuls use now (for reports)."""
    return {"cuda.matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            TF32_OVERRIDE_ENV: os.environ.get(TF32_OVERRIDE_ENV)}


__all__ = ["FP32", "TF32_OVERRIDE", "TF32_OVERRIDE_ENV", "cpu_threads", "device_model",
           "pin_precision", "pin_threads",
           "precision_flags", "resolve_device", "tf32_override"]
