"""The one interface every training method implements, for a pack of k trials at once.

A method gets the batches of k trials of the same (method, radius) stacked — x (k, B, d),
y (k, B) — and a `PackedMLP`; it computes each trial's loss and leaves the gradient of their sum
in the parameters' `.grad` (trials share no parameter, so each trial gets exactly its own
gradient). It runs the backward itself: the smoothed max must backward chunk by chunk to keep
memory bounded. It returns the detached per-trial losses, shape (k,). Each trial's randomness comes
from its own generators, so a packed run draws what k separate runs would draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.spec import TempSchedule, TrainSettings, TrainSpec


@dataclass(frozen=True)
class StepContext:
    spec: TrainSpec    # the pack's shared method, radius and settings (seeds differ per trial)
    step: int          # optimizer steps done before this one
    epoch: int         # zero-based epoch of this step
    temperature: float
    generators: Sequence[torch.Generator]       # per trial, on the training device
    seed_generators: Sequence[torch.Generator]  # per trial, on the CPU (seeds without a sync)


MethodStep = Callable[[nn.Module, Tensor, Tensor, StepContext], Tensor]


def temperature(settings: TrainSettings, step: int, epoch: int) -> float:
    """T = T0 - (T0 - T1) * min(1, t / temp_steps), t the optimizer step (or the epoch)."""
    t = step if settings.temp_schedule is TempSchedule.STEP else epoch
    frac = min(1.0, t / settings.temp_steps)
    return settings.temp_start - (settings.temp_start - settings.temp_end) * frac


def draw_seed(generator: torch.Generator) -> int:
    """A 62-bit seed from a CPU generator, for sources that regenerate their samples."""
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


def per_trial_rand(shape: Sequence[int], generators: Sequence[torch.Generator],
                   like: Tensor) -> Tensor:
    """U[0, 1) of shape (k, *shape), trial i drawn from generator i."""
    return torch.stack([torch.rand(tuple(shape), generator=g, device=like.device, dtype=like.dtype)
                        for g in generators])


def per_trial_ce(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of each sample, logits (..., C) and labels (...) -> (...)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                           reduction="none").view(y.shape)


def batch_mean_ce(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """(k,): each trial's batch-mean cross-entropy."""
    return per_trial_ce(model(x), y).mean(dim=-1)
