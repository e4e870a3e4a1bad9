"""`adversarial`: cross-entropy on an L-inf PGD attack of the batch, clean for the first epochs."""

from __future__ import annotations

from torch import Tensor, nn

from trainers.attacks import pgd_linf
from trainers.methods.base import StepContext, batch_mean_ce, step_uniform
from trainers.rng import Purpose


def adversarial_step(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
    s = ctx.spec.settings
    if ctx.epoch >= s.adv_start_epoch:
        step_size = s.pgd_step_factor * ctx.spec.radius / s.pgd_steps
        start = step_uniform(ctx, Purpose.PGD_START, x)
        x = pgd_linf(model, x, y, ctx.spec.radius, s.pgd_steps, step_size,
                     random_start=step_size, start_noise=start)
    losses = batch_mean_ce(model, x, y)
    losses.sum().backward()
    return losses.detach()
