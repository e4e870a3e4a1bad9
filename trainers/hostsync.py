"""Finds the calls that make the host wait on the device, on any machine (a CPU included).

On CUDA a step that reads a device value on the host (`.item()`, `if t:`, `int(t)`, a
data-dependent shape such as `nonzero` or a boolean-mask index, a copy to the CPU) stalls the
launch queue, and inside a CUDA graph capture it is an error. On the CPU the same calls cost
nothing and go unnoticed, so `record_waits` intercepts them at the Python level instead: the
code under test runs unchanged and every such call is recorded with the file that made it.
Creating a tensor from host data (`torch.tensor`, `torch.as_tensor`, `torch.from_numpy`) is
recorded too: inside a captured graph it would bake in this step's values.

(On CUDA, `torch.cuda.set_sync_debug_mode("error")` is the device's own check of the same.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# Tensor methods that read a device value on the host
TENSOR_WAITS = ("item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__int__",
                "__float__", "__index__")
# torch functions with a data-dependent output shape, or that copy host data to a device
TORCH_WAITS = ("nonzero", "masked_select", "unique", "tensor", "as_tensor", "from_numpy")
# calls made on the CPU only, where they wait on nothing: the generalized ReLU's check for exact
# zeros (trainers.model; on CUDA its correction runs unconditionally instead)
CPU_ONLY = (("__bool__", "trainers/model.py"),)


@dataclass
class Waits:
    """The recorded calls, each (name, calling file as 'folder/file.py')."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def outside(self, *files: str) -> list[tuple[str, str]]:
        """The calls made from files other than `files` ('folder/file.py')."""
        return [call for call in self.calls if call[1] not in files]

    def on_cuda(self) -> list[tuple[str, str]]:
        """The calls that the same code would make on CUDA (all but `CPU_ONLY`): those that
        would wait there."""
        return [call for call in self.calls if call not in CPU_ONLY]


def _caller() -> str:
    path = Path(sys._getframe(2).f_code.co_filename)
    return f"{path.parent.name}/{path.name}"


def _is_mask(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
               for i in items)


@contextmanager
def record_waits() -> Iterator[Waits]:
    """Record, while the block runs, every call that would make the host wait on the device
    (see the module doc). Not thread-safe: the patch is process-wide while it lasts."""
    waits = Waits()
    saved: list[tuple[Any, str, Any]] = []  # (owner, name, its own attribute or None)

    def patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        saved.append((owner, name, vars(owner).get(name)))
        setattr(owner, name, wrap(getattr(owner, name)))

    def counted(name: str) -> Callable[[Any], Any]:
        def wrap(original: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                waits.calls.append((name, _caller()))
                return original(*args, **kwargs)
            return call
        return wrap

    def getitem(original: Any) -> Any:
        def call(t: torch.Tensor, index: Any) -> Any:
            if _is_mask(index):
                waits.calls.append(("boolean index", _caller()))
            return original(t, index)
        return call

    try:
        for name in TENSOR_WAITS:
            patch(torch.Tensor, name, counted(name))
        for name in TORCH_WAITS:
            patch(torch, name, counted(f"torch.{name}"))
        patch(torch.Tensor, "__getitem__", getitem)
        yield waits
    finally:
        for owner, name, own in reversed(saved):
            if own is None:  # inherited (e.g. from torch._C.TensorBase): drop the patch
                delattr(owner, name)
            else:
                setattr(owner, name, own)


__all__ = ["CPU_ONLY", "TENSOR_WAITS", "TORCH_WAITS", "Waits", "record_waits"]
