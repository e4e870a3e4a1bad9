"""The one training loop for all methods (CPU or CUDA), resumable from its own checkpoints.

Everything random in a trial comes from generators seeded from the trial's seed alone (model
initialisation, data order, method noise, the ReLU subgradient), and all of it is in the
checkpoint, so an interrupted and resumed run gives the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from trainers.atomic import atomic_torch_save, sha256_file
from trainers.checkpoint import (
    capture_global_rng,
    load_checkpoint,
    restore_global_rng,
    save_checkpoint,
)
from trainers.data import Dataset, load_dataset, subset_train
from trainers.methods import StepContext, method_step, temperature
from trainers.model import MLP, build_model
from trainers.spec import SpecError, TrainSpec


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
    final_loss: float     # mean training loss of the last (possibly partial) epoch
    finished: bool        # False when stopped early by `should_stop` (a checkpoint was written)
    model_sha256: str | None  # sha256 of the model file when finished


def derive_seed(seed: int, stream: str) -> int:
    """Independent, stable sub-seeds per purpose, so adding a stream never shifts another."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(f"device {device!r} requested but no CUDA device is available "
                        f"(use --device cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise SpecError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    return torch.device(device)


class _Run:
    """The mutable state of one trial between checkpoints."""

    def __init__(self, spec: TrainSpec, data: Dataset, device: torch.device) -> None:
        s = spec.settings
        self.spec, self.data, self.device = spec, data, device
        self.model: MLP = build_model(s.hidden, data.n_features, data.n_classes,
                                      seed=derive_seed(spec.seed, "init")).to(device)
        self.relu_gen = torch.Generator(device=device).manual_seed(derive_seed(spec.seed, "relu"))
        self.model.set_generator(self.relu_gen)
        self.noise_gen = torch.Generator(device=device).manual_seed(derive_seed(spec.seed, "noise"))
        self.data_gen = torch.Generator().manual_seed(derive_seed(spec.seed, "data"))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=s.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=s.lr_step_size,
                                                         gamma=s.lr_gamma)
        self.step = 0
        self.epoch = 0
        self.batch_index = 0
        self.perm: torch.Tensor | None = None
        self.loss_sum = 0.0
        self.loss_count = 0
        self.last_epoch_loss = math.nan
        self.wall_total = 0.0

    @property
    def n_batches(self) -> int:
        return math.ceil(len(self.data.y_train) / self.spec.settings.batch_size)

    def total_steps(self) -> int:
        s = self.spec.settings
        total = s.epochs * self.n_batches
        return min(total, s.max_steps) if s.max_steps is not None else total

    def state(self, finished: bool) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(), "step": self.step, "epoch": self.epoch,
            "batch_index": self.batch_index, "finished": finished,
            "perm": self.perm if self.perm is not None else torch.empty(0, dtype=torch.long),
            "loss_sum": self.loss_sum, "loss_count": self.loss_count,
            "last_epoch_loss": self.last_epoch_loss, "wall_total": self.wall_total,
            "temperature_step": self.step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": {"global": capture_global_rng(), "data": self.data_gen.get_state(),
                    "noise": self.noise_gen.get_state(), "relu": self.relu_gen.get_state()},
        }

    def load(self, ck: dict[str, Any]) -> None:
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.step, self.epoch, self.batch_index = ck["step"], ck["epoch"], ck["batch_index"]
        self.perm = ck["perm"] if ck["perm"].numel() else None
        self.loss_sum, self.loss_count = ck["loss_sum"], ck["loss_count"]
        self.last_epoch_loss, self.wall_total = ck["last_epoch_loss"], ck["wall_total"]
        rng = ck["rng"]
        restore_global_rng(rng["global"])
        self.data_gen.set_state(rng["data"])
        self.noise_gen.set_state(rng["noise"])
        self.relu_gen.set_state(rng["relu"])

    def run_step(self) -> None:
        s = self.spec.settings
        if self.perm is None:
            self.perm = torch.randperm(len(self.data.y_train), generator=self.data_gen)
        idx = self.perm[self.batch_index * s.batch_size:(self.batch_index + 1) * s.batch_size]
        idx = idx.to(self.device)
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        ctx = StepContext(self.spec, self.step, self.epoch,
                          temperature(s, self.step, self.epoch), self.noise_gen)
        self.optimizer.zero_grad(set_to_none=True)
        loss = method_step(self.spec.method)(self.model, x, y, ctx)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.batch_index += 1
        self.loss_sum += float(loss) * len(y)
        self.loss_count += len(y)
        if self.batch_index >= self.n_batches:
            self.last_epoch_loss = self.loss_sum / max(self.loss_count, 1)
            self.epoch += 1
            self.batch_index = 0
            self.perm = None
            self.loss_sum, self.loss_count = 0.0, 0


def _load_data(spec: TrainSpec, data_dir: str | os.PathLike[str] | None,
               device: torch.device) -> Dataset:
    data = load_dataset(spec.dataset, data_dir)
    data = subset_train(data, spec.settings.train_subset, derive_seed(spec.seed, "subset"))
    return data.to(device)


def _check_writable(paths: TrainPaths) -> None:
    for folder in {paths.model.parent, paths.checkpoint.parent}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecError(f"{folder}: cannot create the save folder ({exc.strerror})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SpecError(f"{folder}: save folder is not writable")


def train(spec: TrainSpec, paths: TrainPaths, *, data_dir: str | os.PathLike[str] | None = None,
          device: str = "cpu", resume: bool = True, progress: bool = True,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train `spec` to the end (epochs or max_steps) and write the model file atomically.

    Resumes from `paths.checkpoint` (or its previous copy if the newest is corrupt) when `resume`.
    `should_stop` is polled after every optimizer step; when it returns True a checkpoint is
    written and the call returns with finished=False (preemption, SIGTERM, Ctrl-C).
    """
    spec.validate()
    dev = resolve_device(device)
    _check_writable(paths)
    data = _load_data(spec, data_dir, dev)
    run = _Run(spec, data, dev)
    start = time.monotonic()
    if resume:
        ck = load_checkpoint(paths.checkpoint, paths.previous_checkpoint, spec)
        if ck is not None:
            run.load(ck)
    resumed_from = run.step
    total = run.total_steps()
    s = spec.settings
    last_ckpt_step, last_ckpt_time = run.step, time.monotonic()

    def checkpoint(finished: bool = False) -> None:
        nonlocal last_ckpt_step, last_ckpt_time
        run.wall_total += time.monotonic() - last_ckpt_time
        save_checkpoint(run.state(finished), paths.checkpoint, paths.previous_checkpoint)
        last_ckpt_step, last_ckpt_time = run.step, time.monotonic()

    bar = tqdm(total=total, initial=min(run.step, total), unit="step", disable=not progress,
               desc=f"{spec.method.value} eps={spec.radius:g} seed={spec.seed}", dynamic_ncols=True,
               mininterval=1.0)
    try:
        while run.step < total:
            run.run_step()
            bar.update(1)
            if run.batch_index == 0 and progress:
                bar.set_postfix(epoch=run.epoch, loss=f"{run.last_epoch_loss:.4f}", refresh=False)
            if should_stop is not None and should_stop():
                checkpoint()
                return TrainResult(run.step, run.epoch, time.monotonic() - start, resumed_from,
                                   _current_loss(run), False, None)
            if (run.step - last_ckpt_step >= s.checkpoint_every
                    or time.monotonic() - last_ckpt_time >= s.checkpoint_every_s):
                checkpoint()
    finally:
        bar.close()
    if run.step != last_ckpt_step or not paths.checkpoint.exists() or not paths.model.exists():
        atomic_torch_save({k: v.detach().cpu() for k, v in run.model.state_dict().items()},
                          paths.model)
        checkpoint(finished=True)
    return TrainResult(run.step, run.epoch, time.monotonic() - start, resumed_from,
                       _current_loss(run), True, sha256_file(paths.model))


def _current_loss(run: _Run) -> float:
    return run.loss_sum / run.loss_count if run.loss_count else run.last_epoch_loss
