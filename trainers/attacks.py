"""L-infinity attacks and ball sampling shared by training and evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def uniform_ball(x: Tensor, radius: float, n: int, generator: torch.Generator | None = None) -> Tensor:
    """n points uniform in the L-inf ball of `radius` around each row of x: shape (B, n, d)."""
    u = torch.rand((x.shape[0], n, x.shape[1]), generator=generator, device=x.device, dtype=x.dtype)
    return x.unsqueeze(1) + (2.0 * u - 1.0) * radius


def project_ball(z: Tensor, center: Tensor, radius: float) -> Tensor:
    return torch.max(torch.min(z, center + radius), center - radius)


def batch_mean_ce_sum(logits: Tensor, y: Tensor) -> Tensor:
    """Batch-mean cross-entropy (the batch is y's last dim), summed over any leading dims such
    as the trials of a pack: each trial's input gradient is that of its own batch mean."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
    return ce.view(y.shape).mean(dim=-1).sum()


def input_grad(model: nn.Module, z: Tensor, y: Tensor) -> Tensor:
    """Gradient of the batch-mean cross-entropy with respect to the input only (weights frozen)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = batch_mean_ce_sum(model(z), y)
        (grad,) = torch.autograd.grad(loss, z, only_inputs=True)
    return grad


def pgd_linf(model: nn.Module, x: Tensor, y: Tensor, radius: float, steps: int, step_size: float,
             random_start: float | None = None, generator: torch.Generator | None = None,
             start_noise: Tensor | None = None) -> Tensor:
    """Sign-gradient ascent of the batch-mean CE, projected to the L-inf ball after every step.

    `random_start` is the half-width of the uniform start around x (None: start at x); the paper's
    training code starts uniformly within +-step_size. `start_noise` (U[0,1), x's shape) replaces
    the draw from `generator` when the caller draws it itself (one generator per packed trial).
    """
    x = x.detach()
    if random_start is not None and random_start > 0:
        noise = start_noise if start_noise is not None else torch.rand(
            x.shape, generator=generator, device=x.device, dtype=x.dtype)
        z = project_ball(x + (2.0 * noise - 1.0) * random_start, x, radius)
    else:
        z = x.clone()
    for _ in range(steps):
        grad = input_grad(model, z, y)
        z = project_ball(z + step_size * grad.sign(), x, radius)
    return z.detach()
