"""The one interface every training method implements, for a pack of k trials at once.

A method gets the batches of k trials of the same (method, radius) stacked — x (k, B, d),
y (k, B) — and a `PackedMLP`; it computes each trial's loss and leaves the gradient of their sum
in the parameters' `.grad` (trials share no parameter, so each trial gets exactly its own
gradient). It runs the backward itself: the smoothed max must backward chunk by chunk to keep
memory bounded. It returns the detached per-trial losses, shape (k,). Each trial's randomness comes
from its own counter streams, keyed by (its seed, purpose, step) (trainers.rng): a packed run
draws what k separate runs would draw, on any device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers import rng
from trainers.model import relu_draws
from trainers.packed import PackedMLP
from trainers.rng import Purpose, keys_tensor, stream_key
from trainers.spec import TempSchedule, TrainSettings, TrainSpec

# The purposes of a step's streams, in the row order of a keys table (`step_keys`).
STEP_PURPOSES = (Purpose.BALL, Purpose.PGD_START, Purpose.LANGEVIN, Purpose.RELU)


def step_keys(seeds: Sequence[int], step: int, device: torch.device) -> Tensor:
    """(len(STEP_PURPOSES), k) int64 on `device`: every stream key of one step of a pack, in one
    host-to-device copy."""
    keys = [stream_key(seed, purpose, step) for purpose in STEP_PURPOSES for seed in seeds]
    return keys_tensor(keys, device).view(len(STEP_PURPOSES), len(seeds))


class StepStreams:
    """A pack's `step_keys` and generalized-ReLU draws (`relu_draws`, laid out as
    `PackedMLP.relu_u`) for every step, made `block` steps at a time: one tensor, one ReLU draw
    and one host-to-device copy per block rather than per step, where they cost an eager CPU step
    of the small network more than its arithmetic. A block holds steps [b * block, (b + 1) *
    block), a pure function of the seeds and b, so a resumed run reads what it would have read."""

    def __init__(self, seeds: Sequence[int], device: torch.device, block: int = 64) -> None:
        self.seeds, self.device, self.block = tuple(seeds), device, block
        self._start = -1
        self._keys = self._relu = torch.empty(0)

    def at(self, step: int) -> tuple[Tensor, Tensor]:
        """(this step's keys table (len(STEP_PURPOSES), k), its ReLU draws (layers, k, 1, 1)),
        both on the device."""
        start = step - step % self.block
        if start != self._start:
            keys = rng.stream_keys(self.seeds, STEP_PURPOSES, range(start, start + self.block))
            table = keys_tensor(keys).view(self.block, len(STEP_PURPOSES), len(self.seeds))
            relu = relu_draws(table[:, STEP_PURPOSES.index(Purpose.RELU)].reshape(-1), table.device)
            layout = relu.view(self.block, len(self.seeds), -1, 1, 1).transpose(1, 2)
            self._keys = table.to(self.device, non_blocking=True)
            self._relu = layout.contiguous().to(self.device, non_blocking=True)
            self._start = start
        return self._keys[step - start], self._relu[step - start]


@dataclass(frozen=True)
class StaticContext:
    """All that the static stage of a step may read: the pack's fixed spec and the step's
    stream keys as a device tensor. No per-step Python value (step, epoch, temperature, learning
    rate) is reachable from here, so a CUDA graph of the stage bakes in nothing that changes
    between its replays."""

    spec: TrainSpec
    keys_table: Tensor    # (len(STEP_PURPOSES), k) int64, see `step_keys`

    def keys(self, purpose: Purpose, device: torch.device | None = None) -> Tensor:
        """(k,) this step's keys for `purpose`: a view of the table, no copy."""
        return self.keys_table[STEP_PURPOSES.index(purpose)]


@dataclass
class KeptSamples:
    """Samples per trial that a step's smoothed max kept (weight >= threshold; the certified
    candidates on tensor cores), over the steps since the counter was made: a model whose balls
    straddle the pruning margin late in training costs more, and this is where it shows
    (progress files and DONE markers record it for the planner)."""

    steps: int = 0
    total: float = 0.0
    peak: float = 0.0

    def add(self, kept: float) -> None:
        self.steps += 1
        self.total += kept
        self.peak = max(self.peak, kept)

    def summary(self) -> dict[str, float] | None:
        """{"mean": ..., "max": ..., "steps": ...} per trial and step, or None before any step."""
        if not self.steps:
            return None
        return {"mean": self.total / self.steps, "max": self.peak, "steps": self.steps}


@dataclass(frozen=True)
class StepContext:
    spec: TrainSpec    # the pack's shared method, radius and settings (seeds differ per trial)
    step: int          # optimizer steps done before this one
    epoch: int         # zero-based epoch of this step
    temperature: float
    seeds: Sequence[int]  # per trial: its seed, from which its streams' keys derive
    keys_table: Tensor | None = None  # this step's `step_keys`, when the caller made them
    relu_u: Tensor | None = None  # this step's ReLU draws, when the caller made them (`StepStreams`)
    kept: KeptSamples | None = None  # where the smoothed max counts the samples it kept

    def stream_keys(self, purpose: Purpose) -> list[int]:
        """Per trial, the key of this step's stream for `purpose`."""
        return [stream_key(seed, purpose, self.step) for seed in self.seeds]

    def keys(self, purpose: Purpose, device: torch.device) -> Tensor:
        if self.keys_table is not None and self.keys_table.device == device:
            return self.keys_table[STEP_PURPOSES.index(purpose)]
        return keys_tensor(self.stream_keys(purpose), device)

    def static(self, device: torch.device) -> StaticContext:
        table = self.keys_table
        if table is None or table.device != device:
            table = step_keys(self.seeds, self.step, device)
        return StaticContext(self.spec, table)


MethodStep = Callable[[nn.Module, Tensor, Tensor, StepContext], Tensor]
StageRun = Callable[[nn.Module, Tensor, Tensor, StaticContext], tuple[Tensor, ...]]
Finish = Callable[[nn.Module, Tensor, Tensor, StepContext, tuple[Tensor, ...]], Tensor]


@dataclass(frozen=True)
class Stage:
    """The part of a step with static shapes and no host wait, which a CUDA graph may capture
    (trainers.graphs): a function of its tensor inputs (x, y, the keys table) and the pack's
    fixed settings only. `name` tells the variants of a method apart (one graph each)."""

    name: str
    run: StageRun


@dataclass(frozen=True)
class MethodParts:
    """A method's step as an optional static stage, then an optional eager finish.

    Without a finish the stage is the whole step: it leaves the gradient of the trials' summed
    loss in .grad and returns ((k,) losses,). A finish takes the stage's outputs (or () without
    a stage), runs what needs the host (the smoothed max's one read per step) and returns the
    losses."""

    stage: Callable[[StepContext], Stage | None]
    finish: Finish | None = None


def set_relu_draws(model: nn.Module, ctx: StaticContext | StepContext) -> None:
    """The generalized ReLU's draws of this step: inside a static stage from the keys table on
    the device; in an eager step as the caller made them (`StepStreams`), else from the keys
    on the host (the same draws; on the CPU made there, see `relu_draws`)."""
    set_keys = getattr(model, "set_relu_keys", None)
    if set_keys is None:
        return
    if not isinstance(ctx, StepContext):
        set_keys(ctx.keys(Purpose.RELU))
    elif ctx.relu_u is not None and isinstance(model, PackedMLP):
        model.set_relu_values(ctx.relu_u)
    else:
        set_keys(ctx.stream_keys(Purpose.RELU))


def eager_step(parts: MethodParts) -> MethodStep:
    """The whole step run eagerly: the ReLU draws, the stage, the finish."""
    def step(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        static = ctx.static(x.device)
        set_relu_draws(model, ctx)
        stage = parts.stage(ctx)
        outs = () if stage is None else stage.run(model, x, y, static)
        return outs[0] if parts.finish is None else parts.finish(model, x, y, ctx, outs)
    return step


def temperature(settings: TrainSettings, step: int, epoch: int) -> float:
    """T = T0 - (T0 - T1) * min(1, t / temp_steps), t the optimizer step (or the epoch)."""
    t = step if settings.temp_schedule is TempSchedule.STEP else epoch
    frac = min(1.0, t / settings.temp_steps)
    return settings.temp_start - (settings.temp_start - settings.temp_end) * frac


def step_uniform(ctx: StepContext | StaticContext, purpose: Purpose, like: Tensor,
                 repeats: int = 0) -> Tensor:
    """U[0, 1) for every coordinate of like (k, B, d), trial t from its own stream for this step
    and purpose, the whole pack in one draw: (k, B, d), or (k, repeats, B, d) when repeats > 0
    (row r of point i is position (r, i) of the stream)."""
    _, b, d = like.shape
    keys = ctx.keys(purpose, like.device)
    if repeats:
        return rng.uniform(keys, [(0, repeats), (0, b)], [repeats, b], d, like.dtype)
    return rng.uniform(keys, [(0, b)], [b], d, like.dtype)


def per_trial_ce(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of each sample, logits (..., C) and labels (...) -> (...)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                           reduction="none").view(y.shape)


def batch_mean_ce(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """(k,): each trial's batch-mean cross-entropy."""
    return per_trial_ce(model(x), y).mean(dim=-1)
