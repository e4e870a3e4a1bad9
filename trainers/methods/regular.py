"""`regular`: plain cross-entropy on the clean batch."""

from __future__ import annotations

from torch import Tensor, nn

from trainers.methods.base import StepContext, batch_mean_ce


def regular_step(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
    del ctx
    losses = batch_mean_ce(model, x, y)
    losses.sum().backward()
    return losses.detach()
