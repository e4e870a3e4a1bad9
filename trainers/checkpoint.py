"""Self-describing training checkpoints: written atomically, read with weights_only=True.

Two generations are kept (`ckpt` and `ckpt.prev`): the previous one is moved aside before the new
one is written, so a crash at any moment leaves at least one complete checkpoint, and a truncated
or corrupt newest file falls back to the previous good one. Each file carries the sha256 of its
content (`common.atomic.atomic_torch_save_verified`), so a flipped byte is a corrupt file too.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.atomic import (
    IntegrityError,
    StorageError,
    UnhashedError,
    atomic_torch_save_verified,
    torch_load_verified,
)
from trainers.spec import SpecError, TrainSpec

FORMAT = "drosweep-checkpoint/1"
REQUIRED_KEYS = ("format", "spec", "step", "epoch", "batch_index", "model", "optimizer",
                 "scheduler")
# settings that may change between runs of the same trial without changing what it computes
# (a precision change is reported by `environment_change`, not refused)
RESUMABLE_DIFFERENCES = {"max_steps", "epochs", "checkpoint_every", "checkpoint_every_s",
                         "allow_tf32_override", "cuda_graphs"}


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, foreign, or of another spec."""


def environment_change(saved: dict[str, Any], current: dict[str, str]) -> str | None:
    """One line saying how this run's device or precision (`current`: the checkpoint keys
    device, device_model, precision) differs from the checkpoint's; None when the same or not
    recorded. Sampling is device-independent (trainers.rng), so such a run continues: the samples
    are the same, the arithmetic may differ by float rounding."""
    changes = [f"{key} {saved[key]!r} -> {value!r}" for key, value in current.items()
               if saved.get(key) is not None and saved[key] != value]
    if not changes:
        return None
    return (f"resuming at step {saved.get('step')} with {', '.join(changes)}: the same samples, "
            f"results equal only up to float rounding")


def library_versions() -> dict[str, str]:
    return {"torch": str(torch.__version__), "numpy": str(np.__version__), "python": sys.version.split()[0],
            "platform": platform.platform()}


def save_checkpoint(state: dict[str, Any], path: Path, previous: Path) -> None:
    payload = dict(state)
    payload["format"] = FORMAT
    payload["versions"] = library_versions()
    if path.exists():
        os.replace(path, previous)
    try:
        atomic_torch_save_verified(payload, path)
    except StorageError as exc:
        kept = (f"the previous checkpoint {previous} is intact" if previous.exists()
                else "no earlier checkpoint exists")
        err = StorageError(f"{exc}; {kept}: free space and run again to resume from it")
        err.errno, err.path = exc.errno, exc.path
        raise err from None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = torch_load_verified(path)
    except UnhashedError as exc:  # written before checkpoints carried a hash: resumable, unverified
        data = exc.content
        if isinstance(data, dict) and data.get("format") == FORMAT:
            warnings.warn(f"{path}: checkpoint written before content hashes; resuming from it "
                          f"unverified (the next checkpoint carries a hash)", stacklevel=3)
        else:
            raise CheckpointError(str(exc)) from None
    except IntegrityError as exc:
        raise CheckpointError(str(exc)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError,
            AttributeError, KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    except Exception as exc:  # pickle.UnpicklingError from the weights-only unpickler
        raise CheckpointError(f"{path}: not a drosweep checkpoint ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a drosweep checkpoint (format "
                              f"{data.get('format') if isinstance(data, dict) else type(data)})")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return data


def check_same_trial(saved: dict[str, Any], spec: TrainSpec, path: Path) -> None:
    """Refuse to resume another trial's checkpoint (settings that only bound the run may differ)."""
    mine = spec.to_dict()
    theirs = saved
    for key in ("method", "radius", "seed", "dataset", "data"):
        if mine.get(key) != theirs.get(key):
            raise SpecError(f"{path}: checkpoint was written for {key}={theirs.get(key)!r}, "
                            f"this run has {key}={mine.get(key)!r}; use another save folder or "
                            f"delete the checkpoint")
    for key, value in mine["settings"].items():
        if key in RESUMABLE_DIFFERENCES:
            continue
        if theirs.get("settings", {}).get(key) != value:
            raise SpecError(f"{path}: checkpoint was written with setting {key}="
                            f"{theirs.get('settings', {}).get(key)!r}, this run has {value!r}; "
                            f"use another save folder or delete the checkpoint")


def load_checkpoint(path: Path, previous: Path, spec: TrainSpec) -> dict[str, Any] | None:
    """The newest usable checkpoint, or None when there is none at all.

    A corrupt newest file is reported and skipped for the previous generation; a checkpoint of
    another spec is an error (never silently overwritten).
    """
    for candidate in (path, previous):
        if not candidate.exists():
            continue
        try:
            data = _read(candidate)
        except CheckpointError as exc:
            warnings.warn(f"{exc}; trying the previous checkpoint", stacklevel=2)
            continue
        check_same_trial(data["spec"], spec, candidate)
        return data
    return None
