"""The one training loop for all methods (CPU or CUDA), resumable from its own checkpoints."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainers.spec import TrainSpec


@dataclass(frozen=True)
class TrainPaths:
    """Where one trial's files live. The checkpoint keeps one previous good copy beside it."""

    model: Path
    checkpoint: Path

    @property
    def previous_checkpoint(self) -> Path:
        return self.checkpoint.with_name(self.checkpoint.name + ".prev")


@dataclass(frozen=True)
class TrainResult:
    steps: int            # optimizer steps done in total (across resumes)
    epochs: int           # epochs completed
    wall_s: float         # wall time of this call
    resumed_from: int     # step the call started from (0: fresh)
    final_loss: float     # mean training loss of the last epoch (or partial epoch)
    finished: bool        # False when stopped early by `should_stop` (a checkpoint was written)
    model_sha256: str | None  # sha256 of the model file when finished


def train(spec: TrainSpec, paths: TrainPaths, *, data_dir: str | os.PathLike[str] | None = None,
          device: str = "cpu", resume: bool = True, progress: bool = True,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train `spec` to the end (epochs or max_steps) and write the model file atomically.

    Resumes from `paths.checkpoint` (or its previous copy if the newest is corrupt) when `resume`.
    `should_stop` is polled after every optimizer step; when it returns True a checkpoint is
    written and the call returns with finished=False (preemption, SIGTERM, Ctrl-C).
    """
    raise NotImplementedError
