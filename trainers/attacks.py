"""L-infinity attacks and ball sampling shared by training and evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers import rng


def uniform_ball(x: Tensor, radius: float, keys: Tensor, start: int, width: int, total: int,
                 points: Tensor | None = None) -> Tensor:
    """Samples start .. start + width - 1 of the `total` of each point, uniform in the L-inf ball
    of `radius` around it: x (B, d) -> (B, width, d) with one key; x (k, B, d) with k keys ->
    (k, B, width, d), trial t drawn from keys[t] (see trainers.rng).

    Sample j of point i is coordinate-wise x + (2u - 1) * radius with u the draw at position
    (points[i] if given else i, j) of the stream, so it is the same whatever the blocks drawn,
    the pack or the device. `points` names the rows' indices among all points.
    """
    packed = x.dim() == 3
    xs = x if packed else x.unsqueeze(0)
    if keys.numel() != xs.shape[0]:
        raise ValueError(f"need one key per trial: x {tuple(x.shape)}, {keys.numel()} key(s)")
    rows = points if points is not None else (0, xs.shape[1])
    u = rng.uniform(keys, [rows, (start, width)], [xs.shape[1], total], xs.shape[-1], xs.dtype)
    z = u.mul_(2.0).sub_(1.0).mul_(radius).add_(xs.detach().unsqueeze(-2))
    return z if packed else z[0]


def uniform_ball_at(x: Tensor, radius: float, keys: Tensor, points: Tensor, samples: Tensor,
                    total: int) -> Tensor:
    """The samples (points[t, i], samples[t, i]) of each trial t, as `uniform_ball` draws them
    (bit for bit): x (k, B, d), keys (k,), points and samples (k, L) -> (k, L, d). Draws only
    those samples, wherever they lie among the `total` of each point."""
    u = rng.uniform_at(keys, points * total + samples, x.shape[-1], x.dtype)
    centers = x.detach().gather(1, points.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    return u.mul_(2.0).sub_(1.0).mul_(radius).add_(centers)


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
             random_start: float | None = None, start_noise: Tensor | None = None) -> Tensor:
    """Sign-gradient ascent of the batch-mean CE, projected to the L-inf ball after every step.

    `random_start` is the half-width of the uniform start around x (None: start at x); the paper's
    training code starts uniformly within +-step_size; `start_noise` (U[0,1), x's shape, drawn by
    the caller from its counter streams) is then required.
    """
    x = x.detach()
    if random_start is not None and random_start > 0:
        if start_noise is None:
            raise ValueError("a random start needs start_noise (U[0, 1) of x's shape)")
        z = project_ball(x + (2.0 * start_noise - 1.0) * random_start, x, radius)
    else:
        z = x.clone()
    for _ in range(steps):
        grad = input_grad(model, z, y)
        z = project_ball(z + step_size * grad.sign(), x, radius)
    return z.detach()
