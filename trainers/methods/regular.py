"""`regular`: plain cross-entropy on the clean batch."""

from __future__ import annotations

from torch import Tensor, nn

from trainers.methods.base import MethodParts, Stage, StaticContext, StepContext, batch_mean_ce, eager_step


def _regular(model: nn.Module, x: Tensor, y: Tensor, ctx: StaticContext) -> tuple[Tensor, ...]:
    del ctx
    losses = batch_mean_ce(model, x, y)
    losses.sum().backward()
    return (losses.detach(),)


_STAGE = Stage("regular", _regular)


def _stage(ctx: StepContext) -> Stage:
    return _STAGE


REGULAR = MethodParts(_stage)
regular_step = eager_step(REGULAR)
