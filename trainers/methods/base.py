"""The one interface every training method implements.

A method computes its loss on a batch and leaves the gradient in the parameters' `.grad` (it runs
the backward itself: the smoothed max must backward chunk by chunk to keep memory bounded). It
returns the detached loss value for logging. All its randomness comes from `ctx.generator`, so a
trial's noise is its own and is restored exactly on resume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainers.spec import TempSchedule, TrainSettings, TrainSpec


@dataclass(frozen=True)
class StepContext:
    spec: TrainSpec
    step: int          # optimizer steps done before this one
    epoch: int         # zero-based epoch of this step
    temperature: float
    generator: torch.Generator  # the trial's noise generator, on the training device


MethodStep = Callable[[nn.Module, Tensor, Tensor, StepContext], Tensor]


def temperature(settings: TrainSettings, step: int, epoch: int) -> float:
    """T = T0 - (T0 - T1) * min(1, t / temp_steps), t the optimizer step (or the epoch)."""
    t = step if settings.temp_schedule is TempSchedule.STEP else epoch
    frac = min(1.0, t / settings.temp_steps)
    return settings.temp_start - (settings.temp_start - settings.temp_end) * frac


def draw_seed(generator: torch.Generator) -> int:
    """A 62-bit seed from the trial's generator, for sources that regenerate their samples."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
