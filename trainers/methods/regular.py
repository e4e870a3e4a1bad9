"""`regular`: plain cross-entropy on the clean batch."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from trainers.methods.base import StepContext


def regular_step(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
    del ctx
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach()
