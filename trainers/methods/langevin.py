"""`langevin`: a noisy gradient-ascent trajectory inside the ball, then the same smoothed max.

x <- clamp_ball(x + (grad_x CE + noise * U(-1, 1)) * step), the gradient of the batch-mean CE with
the weights frozen; the trajectory's points (start included) are the samples of the smoothed max.
The trajectory is the step's static stage (a CUDA graph may capture it); the smoothed max, which
reads its selection on the host once, runs eagerly after it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainers.attacks import input_grad, project_ball
from trainers.methods.base import (
    MethodParts,
    Stage,
    StaticContext,
    StepContext,
    eager_step,
    step_uniform,
)
from trainers.rng import Purpose
from trainers.smoothmax import SmoothMaxStats, smoothed_max_ce_backward, tensor_source


def langevin_trajectory(model: nn.Module, x: Tensor, y: Tensor, radius: float, points: int,
                        step: float, noise: float, uniforms: Tensor) -> Tensor:
    """x (k, B, d) -> (k, B, points, d): the start point and points - 1 updates; uniforms
    (k, points - 1, B, d) in [0, 1) are the noise of the updates."""
    x = x.detach()
    out = torch.empty((*x.shape[:-1], points, x.shape[-1]), dtype=x.dtype, device=x.device)
    z = x
    out[..., 0, :] = z
    for t in range(1, points):
        grad = input_grad(model, z, y)
        u = uniforms[:, t - 1]
        z = project_ball(z + (grad + noise * (2.0 * u - 1.0)) * step, x, radius)
        out[..., t, :] = z
    return out


def _trajectory(model: nn.Module, x: Tensor, y: Tensor, ctx: StaticContext) -> tuple[Tensor, ...]:
    s = ctx.spec.settings
    traj = langevin_trajectory(model, x, y, ctx.spec.radius, s.langevin_points,
                               s.langevin_step_factor * ctx.spec.radius, s.langevin_noise,
                               step_uniform(ctx, Purpose.LANGEVIN, x, s.langevin_points - 1))
    return (traj,)


_STAGE = Stage("langevin-trajectory", _trajectory)


def _stage(ctx: StepContext) -> Stage:
    return _STAGE


def _finish(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext,
            outs: tuple[Tensor, ...]) -> Tensor:
    s = ctx.spec.settings
    (traj,) = outs
    source = tensor_source(traj, s.chunk_for(traj.device.type))
    stats = SmoothMaxStats()
    loss = smoothed_max_ce_backward(model, source, y, ctx.temperature,
                                    threshold=s.prune_threshold, stats=stats)
    if ctx.kept is not None:
        ctx.kept.add(stats.selected_samples / y.shape[0])
    return loss


LANGEVIN = MethodParts(_stage, _finish)
langevin_step = eager_step(LANGEVIN)
