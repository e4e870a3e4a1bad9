"""The one training loop for all methods (CPU or CUDA), for one trial or a pack of k trials.

A pack is k trials of the same method, radius and settings that differ only in their seeds; they
train as one `PackedMLP`, each with its own initialisation, data order, noise and checkpoint, so a
packed run computes what k separate runs compute (see `train_pack`). Everything random in a trial
is a pure function of (its seed, purpose, step or epoch, position) (trainers.rng): there is no
generator state, so an interrupted and resumed run gives the same weights as an uninterrupted
one, and the samples are the same on every device. No global RNG is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from common.atomic import StorageError, atomic_torch_save, remove_stale_temps, unwritable_reason
from trainers.checkpoint import environment_change, load_checkpoint, save_checkpoint
from trainers.data import Dataset, load_dataset, subset_train
from trainers.device import device_model, pin_precision, pin_threads, resolve_device
from trainers.graphs import StepRunner, default_capture
from trainers.methods import StepContext, StepStreams, method_parts, temperature
from trainers.methods.base import KeptSamples
from trainers.model import build_model
from trainers.packed import PackedMLP
from trainers.progress import ProgressLine, ProgressLog, write_progress
from trainers.rng import Purpose, permutation, stream_key
from trainers.spec import SpecError, TrainSpec, pack_key
from trainers.trial_lock import hold_trials


@dataclass(frozen=True)
class TrainPaths:
    """Where one trial's files live. The checkpoint keeps one previous good copy beside it."""

    model: Path
    checkpoint: Path
    progress: Path | None = None   # steps done, for status (trainers/progress.py)

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
    precision: str = ""   # the matmul precision it trained with (trainers.device.pin_precision)
    kept: dict[str, float] | None = None  # smoothed max: kept samples per step (KeptSamples)


def derive_seed(seed: int, stream: str) -> int:
    """Independent, stable sub-seeds per purpose, so adding a stream never shifts another."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class _Trial:
    """Per-trial state of a pack: its data order and loss bookkeeping."""

    def __init__(self, spec: TrainSpec, paths: TrainPaths) -> None:
        self.spec, self.paths = spec, paths
        self.perm: torch.Tensor | None = None  # this epoch's order: a function of (seed, epoch)
        self.loss_sum = 0.0
        self.loss_count = 0
        self.last_epoch_loss = math.nan
        self.wall_total = 0.0

    def current_loss(self) -> float:
        return self.loss_sum / self.loss_count if self.loss_count else self.last_epoch_loss


class PackState:
    """The shared state of k trials between checkpoints."""

    def __init__(self, specs: Sequence[TrainSpec], paths: Sequence[TrainPaths],
                 datasets: Sequence[Dataset], device: torch.device, precision: str) -> None:
        s = specs[0].settings
        self.spec, self.device, self.precision = specs[0], device, precision
        self.environment = {"device": device.type, "device_model": device_model(device),
                            "precision": precision}
        self.trials = [_Trial(sp, pa) for sp, pa in zip(specs, paths, strict=True)]
        data = datasets[0]
        models = [build_model(s.hidden, data.n_features, data.n_classes,
                              seed=derive_seed(sp.seed, "init")) for sp in specs]
        self.model = PackedMLP(models).to(device)
        self.x = torch.stack([d.x_train for d in datasets]).to(device)
        self.y = torch.stack([d.y_train for d in datasets]).to(device)
        # the SGD object keeps the rate that the schedule sets; the update itself is the step
        # runner's (trainers.graphs: p -= lr * grad with lr a 0-d device tensor, so a captured
        # step reads this step's rate)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=s.lr)
        self.lr = torch.zeros((), device=device)
        self.lr_value: float | None = None  # the rate in self.lr
        self.params = list(self.model.parameters())
        self.streams = StepStreams([sp.seed for sp in specs], device)
        self.kept = KeptSamples()  # the smoothed max's kept samples per trial and step
        self.scheduler_stepped = False
        self.runner = StepRunner(method_parts(specs[0].method),
                                 default_capture(device, s.cuda_graphs))
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=s.lr_step_size,
                                                         gamma=s.lr_gamma)
        self.step = 0
        self.epoch = 0
        self.batch_index = 0
        self.loss_acc = torch.zeros(len(specs), dtype=torch.float64, device=device)
        # this epoch's batch order of every trial, on the device: copied once per epoch
        self.order: torch.Tensor | None = None
        self.pack_rows = torch.arange(len(specs), device=device).unsqueeze(1)

    @property
    def n_batches(self) -> int:
        return math.ceil(self.y.shape[1] / self.spec.settings.batch_size)

    def total_steps(self) -> int:
        s = self.spec.settings
        total = s.epochs * self.n_batches
        return min(total, s.max_steps) if s.max_steps is not None else total

    def trial_state(self, i: int, finished: bool) -> dict[str, Any]:
        t = self.trials[i]
        self._flush_losses()
        return {
            "spec": t.spec.to_dict(), "step": self.step, "epoch": self.epoch,
            "batch_index": self.batch_index, "finished": finished,
            "loss_sum": t.loss_sum, "loss_count": t.loss_count,
            "last_epoch_loss": t.last_epoch_loss, "wall_total": t.wall_total,
            "temperature_step": self.step,
            "model": self.model.trial_state_dict(i),
            # plain SGD keeps no per-parameter state: the pack's lr and schedule are the optimizer
            "optimizer": {"lr": self.optimizer.param_groups[0]["lr"]},
            "scheduler": self.scheduler.state_dict(),
            **self.environment,  # what it trained with; its randomness is stateless
        }

    def load_trial(self, i: int, ck: dict[str, Any]) -> None:
        t = self.trials[i]
        self.order = None
        self.model.load_trial(i, ck["model"])
        t.loss_sum, t.loss_count = ck["loss_sum"], ck["loss_count"]
        t.last_epoch_loss, t.wall_total = ck["last_epoch_loss"], ck["wall_total"]
        if i == 0:  # the pack's shared state: equal in every trial's checkpoint
            self.step, self.epoch, self.batch_index = ck["step"], ck["epoch"], ck["batch_index"]
            self.scheduler.load_state_dict(ck["scheduler"])
            for group in self.optimizer.param_groups:
                group["lr"] = ck["optimizer"]["lr"]
            change = environment_change(ck, self.environment)
            if change is not None:
                warnings.warn(change, stacklevel=2)

    def _flush_losses(self) -> None:
        if self.loss_acc.any():
            for t, value in zip(self.trials, self.loss_acc.tolist(), strict=True):
                t.loss_sum += value
            self.loss_acc.zero_()

    def run_step(self) -> None:
        s = self.spec.settings
        if self.order is None or any(t.perm is None for t in self.trials):
            perms = []
            for t in self.trials:
                if t.perm is None:
                    t.perm = permutation(stream_key(t.spec.seed, Purpose.DATA, self.epoch),
                                         self.y.shape[1])
                perms.append(t.perm)
            self.order = torch.stack(perms).to(self.device)
        lo, hi = self.batch_index * s.batch_size, (self.batch_index + 1) * s.batch_size
        idx = self.order[:, lo:hi]
        x, y = self.x[self.pack_rows, idx], self.y[self.pack_rows, idx]
        keys, relu_u = self.streams.at(self.step)
        ctx = StepContext(self.spec, self.step, self.epoch, temperature(s, self.step, self.epoch),
                          self.streams.seeds, keys, relu_u, self.kept)
        for p in self.params:  # optimizer.zero_grad(set_to_none=True), without its profiler scope
            p.grad = None
        lr = self.optimizer.param_groups[0]["lr"]
        if lr != self.lr_value:
            self.lr.fill_(lr)
            self.lr_value = lr
        losses = self.runner(self.model, x, y, ctx, self.lr)
        if self.scheduler_stepped:
            self.scheduler.step()
        else:
            with warnings.catch_warnings():  # the update is the runner's, not optimizer.step()
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                self.scheduler.step()  # (it warns on its first step only)
            self.scheduler_stepped = True
        self.step += 1
        self.batch_index += 1
        self.loss_acc.add_(losses, alpha=y.shape[1])  # exact: an f32 times a batch size, in f64
        for t in self.trials:
            t.loss_count += y.shape[1]
        if self.batch_index >= self.n_batches:
            self._flush_losses()
            self.epoch += 1
            self.batch_index = 0
            self.order = None
            for t in self.trials:
                t.last_epoch_loss = t.loss_sum / max(t.loss_count, 1)
                t.perm, t.loss_sum, t.loss_count = None, 0.0, 0


def _load_data(spec: TrainSpec, data_dir: str | os.PathLike[str] | None) -> Dataset:
    data = load_dataset(spec.dataset, data_dir, options=spec.data_options)
    return subset_train(data, spec.settings.train_subset, derive_seed(spec.seed, "subset"))


def _check_writable(paths: TrainPaths) -> None:
    """Creates nothing: the first write creates the folders, so a refused run leaves no trace."""
    for folder in {paths.model.parent, paths.checkpoint.parent}:
        reason = unwritable_reason(folder)
        if reason is not None:
            raise SpecError(f"{folder}: save folder is not writable ({reason})")


def train(spec: TrainSpec, paths: TrainPaths, *, data_dir: str | os.PathLike[str] | None = None,
          device: str = "cpu", resume: bool = True, progress: bool = True,
          should_stop: Callable[[], bool] | None = None, lines: bool = False) -> TrainResult:
    """Train `spec` to the end (epochs or max_steps) and write the model file atomically.

    Resumes from `paths.checkpoint` (or its previous copy if the newest is corrupt) when `resume`.
    `should_stop` is polled after every optimizer step; when it returns True a checkpoint is
    written and the call returns with finished=False (preemption, SIGTERM, Ctrl-C). `lines`:
    print progress lines on stdout (a task's log file, where no bar can be drawn).
    """
    return train_pack([spec], [paths], data_dir=data_dir, device=device, resume=resume,
                      progress=progress, should_stop=should_stop, lines=lines)[0]


def train_pack(specs: Sequence[TrainSpec], paths: Sequence[TrainPaths], *,
               data_dir: str | os.PathLike[str] | None = None, device: str = "cpu",
               resume: bool = True, progress: bool = True,
               should_stop: Callable[[], bool] | None = None,
               lines: bool = False) -> list[TrainResult]:
    """Train k trials of one (method, radius, settings) as one batched model; results in order.

    Trials whose checkpoints stand at different steps (a pack resumed after a partial run) are
    trained in sub-packs of equal step, one after the other, so each resumes exactly.
    """
    if len(specs) != len(paths) or not specs:
        raise SpecError("train_pack needs one TrainPaths per spec, and at least one spec")
    keys = {pack_key(sp) for sp in specs}
    if len(keys) != 1:
        raise SpecError("a pack holds trials of one method, radius, data set and settings only")
    if len({sp.seed for sp in specs}) != len(specs):
        raise SpecError("the trials of a pack need distinct seeds")
    for sp, pa in zip(specs, paths, strict=True):
        sp.validate()
        _check_writable(pa)
    dev = resolve_device(device)
    precision = pin_precision(specs[0].settings.allow_tf32_override)
    pin_threads()
    with hold_trials([pa.checkpoint for pa in paths]):
        for pa in paths:  # held: any temp file of these paths is left by a killed write
            for path in (pa.model, pa.checkpoint, pa.previous_checkpoint, pa.progress):
                if path is not None:
                    remove_stale_temps(path, older_than_s=0.0)
        return _train_held(specs, paths, data_dir, dev, precision, resume, progress,
                           should_stop, lines)


def _train_held(specs: Sequence[TrainSpec], paths: Sequence[TrainPaths],
                data_dir: str | os.PathLike[str] | None, dev: torch.device, precision: str,
                resume: bool, progress: bool,
                should_stop: Callable[[], bool] | None, lines: bool) -> list[TrainResult]:
    checkpoints = [load_checkpoint(pa.checkpoint, pa.previous_checkpoint, sp) if resume else None
                   for sp, pa in zip(specs, paths, strict=True)]
    groups: dict[int, list[int]] = {}
    for i, ck in enumerate(checkpoints):
        groups.setdefault(ck["step"] if ck else 0, []).append(i)
    results: dict[int, TrainResult] = {}
    for members in groups.values():
        out = _train_group([specs[i] for i in members], [paths[i] for i in members],
                           [checkpoints[i] for i in members], data_dir, dev, precision,
                           progress, should_stop, lines)
        results.update(zip(members, out, strict=True))
        if should_stop is not None and not all(r.finished for r in out):
            break
    return [results.get(i) or _unstarted(checkpoints[i], precision) for i in range(len(specs))]


def _unstarted(ck: dict[str, Any] | None, precision: str) -> TrainResult:
    step = ck["step"] if ck else 0
    return TrainResult(step, ck["epoch"] if ck else 0, 0.0, step, math.nan, False, None,
                       precision)


def _train_group(specs: Sequence[TrainSpec], paths: Sequence[TrainPaths],
                 checkpoints: Sequence[dict[str, Any] | None],
                 data_dir: str | os.PathLike[str] | None, device: torch.device, precision: str,
                 progress: bool, should_stop: Callable[[], bool] | None,
                 lines: bool) -> list[TrainResult]:
    start = time.monotonic()
    pack = PackState(specs, paths, [_load_data(sp, data_dir) for sp in specs], device, precision)
    for i, ck in enumerate(checkpoints):
        if ck is not None:
            pack.load_trial(i, ck)
    resumed_from = pack.step
    total = pack.total_steps()
    s = pack.spec.settings
    last_ckpt_step, last_ckpt_time, last_ckpt_epoch = pack.step, time.monotonic(), pack.epoch

    def checkpoint(finished: bool = False) -> None:
        nonlocal last_ckpt_step, last_ckpt_time, last_ckpt_epoch
        elapsed = time.monotonic() - last_ckpt_time
        for i, t in enumerate(pack.trials):
            t.wall_total += elapsed
            save_checkpoint(pack.trial_state(i, finished), t.paths.checkpoint,
                            t.paths.previous_checkpoint)
            if t.paths.progress is not None:
                write_progress(t.paths.progress, step=pack.step, total=total, epoch=pack.epoch,
                               finished=finished, kept=pack.kept.summary(),
                               wall_s=t.wall_total)
        last_ckpt_step, last_ckpt_time, last_ckpt_epoch = pack.step, time.monotonic(), pack.epoch

    def progress_line(log: ProgressLog) -> None:
        """The line on stdout, and the live step and wall time in each trial's progress file
        (its checkpointed `step` stays that of the last checkpoint)."""
        pack._flush_losses()
        losses = [t.current_loss() for t in pack.trials]
        log.emit(ProgressLine(label, pack.step, total, pack.epoch, sum(losses) / len(losses),
                              log.rate(pack.step) * s.batch_size * len(pack.trials),
                              log.elapsed(), pack.kept.summary()))
        since = time.monotonic() - last_ckpt_time
        for t in pack.trials:
            if t.paths.progress is not None:
                with contextlib.suppress(OSError):  # advisory: never fail the training
                    write_progress(t.paths.progress, step=last_ckpt_step, total=total,
                                   epoch=last_ckpt_epoch, finished=False,
                                   kept=pack.kept.summary(), live_step=pack.step,
                                   wall_s=t.wall_total + since)

    def results(finished: bool, shas: Sequence[str | None] = ()) -> list[TrainResult]:
        wall = time.monotonic() - start
        return [TrainResult(pack.step, pack.epoch, wall, resumed_from, t.current_loss(), finished,
                            shas[i] if finished else None, precision, pack.kept.summary())
                for i, t in enumerate(pack.trials)]

    seeds = ",".join(str(sp.seed) for sp in specs)
    label = f"{pack.spec.method.value} eps={pack.spec.radius:g} seed={seeds}"
    bar = tqdm(total=total, initial=min(pack.step, total), unit="step", disable=not progress,
               desc=label[:60], dynamic_ncols=True, mininterval=1.0)
    log = ProgressLog(total, pack.step) if lines else None
    try:
        while pack.step < total:
            pack.run_step()
            bar.update(1)
            if log is not None and log.due(pack.step):
                progress_line(log)
            if pack.batch_index == 0 and progress:
                losses = [t.last_epoch_loss for t in pack.trials]
                bar.set_postfix(epoch=pack.epoch, loss=f"{sum(losses) / len(losses):.4f}",
                                refresh=False)
            if should_stop is not None and should_stop():
                checkpoint()
                return results(False)
            if (pack.step - last_ckpt_step >= s.checkpoint_every
                    or time.monotonic() - last_ckpt_time >= s.checkpoint_every_s):
                checkpoint()
    finally:
        bar.close()
    # the model file is always rewritten from the final state: whatever was there before (an
    # earlier, shorter run, a damaged file) is never reported as this run's result
    shas: list[str | None] = []
    for i, t in enumerate(pack.trials):
        try:
            shas.append(atomic_torch_save(pack.model.trial_state_dict(i), t.paths.model))
        except StorageError as exc:
            last = next((c for c in (t.paths.checkpoint, t.paths.previous_checkpoint)
                         if c.exists()), None)
            kept = f"the last checkpoint {last} is intact" if last else "no checkpoint yet"
            err = StorageError(f"{exc}; {kept}: free space and run again to finish")
            err.errno, err.path = exc.errno, exc.path
            raise err from None
    unfinished = [ck for ck in checkpoints if ck is None or not ck.get("finished")]
    stale = [t for t in pack.trials if not t.paths.checkpoint.exists()]
    if pack.step != last_ckpt_step or stale or unfinished:
        checkpoint(finished=True)
    return results(True, shas)


__all__ = ["PackState", "TrainPaths", "TrainResult", "derive_seed", "pack_key", "train",
           "train_pack"]
