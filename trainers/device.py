"""The training device: which one to use, and the name a measured rate is valid for."""

from __future__ import annotations

import platform

import torch

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


__all__ = ["device_model", "resolve_device"]
