"""`adversarial`: cross-entropy on an L-inf PGD attack of the batch, clean for the first epochs."""

from __future__ import annotations

from torch import Tensor, nn

from trainers.attacks import pgd_linf
from trainers.methods.base import (
    MethodParts,
    Stage,
    StaticContext,
    StepContext,
    batch_mean_ce,
    eager_step,
    step_uniform,
)
from trainers.rng import Purpose


def _clean(model: nn.Module, x: Tensor, y: Tensor, ctx: StaticContext) -> tuple[Tensor, ...]:
    del ctx
    losses = batch_mean_ce(model, x, y)
    losses.sum().backward()
    return (losses.detach(),)


def _attacked(model: nn.Module, x: Tensor, y: Tensor, ctx: StaticContext) -> tuple[Tensor, ...]:
    """PGD's steps and the loss on the attack: a fixed number of fixed-shape iterations."""
    s = ctx.spec.settings
    step_size = s.pgd_step_factor * ctx.spec.radius / s.pgd_steps
    start = step_uniform(ctx, Purpose.PGD_START, x)
    z = pgd_linf(model, x, y, ctx.spec.radius, s.pgd_steps, step_size,
                 random_start=step_size, start_noise=start)
    return _clean(model, z, y, ctx)


_CLEAN, _ATTACKED = Stage("adversarial-clean", _clean), Stage("adversarial-pgd", _attacked)


def _stage(ctx: StepContext) -> Stage:
    return _ATTACKED if ctx.epoch >= ctx.spec.settings.adv_start_epoch else _CLEAN


ADVERSARIAL = MethodParts(_stage)
adversarial_step = eager_step(ADVERSARIAL)
