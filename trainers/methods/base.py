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
from trainers.rng import Purpose, keys_tensor, stream_key
from trainers.spec import TempSchedule, TrainSettings, TrainSpec


@dataclass(frozen=True)
class StepContext:
    spec: TrainSpec    # the pack's shared method, radius and settings (seeds differ per trial)
    step: int          # optimizer steps done before this one
    epoch: int         # zero-based epoch of this step
    temperature: float
    seeds: Sequence[int]  # per trial: its seed, from which its streams' keys derive

    def stream_keys(self, purpose: Purpose) -> list[int]:
        """Per trial, the key of this step's stream for `purpose`."""
        return [stream_key(seed, purpose, self.step) for seed in self.seeds]

    def keys(self, purpose: Purpose, device: torch.device) -> Tensor:
        return keys_tensor(self.stream_keys(purpose), device)


MethodStep = Callable[[nn.Module, Tensor, Tensor, StepContext], Tensor]


def temperature(settings: TrainSettings, step: int, epoch: int) -> float:
    """T = T0 - (T0 - T1) * min(1, t / temp_steps), t the optimizer step (or the epoch)."""
    t = step if settings.temp_schedule is TempSchedule.STEP else epoch
    frac = min(1.0, t / settings.temp_steps)
    return settings.temp_start - (settings.temp_start - settings.temp_end) * frac


def step_uniform(ctx: StepContext, purpose: Purpose, like: Tensor, repeats: int = 0) -> Tensor:
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
