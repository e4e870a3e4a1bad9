"""`robust`: per training point, the smoothed max T*logsumexp(CE/T) over N(eps) uniform ball points.

Exact and memory-bounded through the two-pass smoothed max (trainers.smoothmax); the N samples
are regenerated from each trial's counter stream of the step rather than stored. Pass 1 runs in
torch chunk by chunk or as one fused kernel (settings robust_kernel, robust_precision). The step
has no static stage: which chunks its backward visits is read on the host once per step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainers.kernels.certificate import Precision
from trainers.kernels.fused_ce import FusedUnavailable, availability
from trainers.methods.base import MethodParts, Stage, StepContext, eager_step
from trainers.rng import Purpose
from trainers.smoothmax import Kernel, SmoothMaxStats, smoothed_max_ce_backward, uniform_ball_source
from trainers.spec import TrainSettings, n_ball_samples


def _no_stage(ctx: StepContext) -> Stage | None:
    return None


def _finish(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext,
            outs: tuple[Tensor, ...]) -> Tensor:
    s = ctx.spec.settings
    n = n_ball_samples(ctx.spec.radius, s)
    source = uniform_ball_source(x, ctx.spec.radius, n, s.chunk_for(x.device.type),
                                 ctx.stream_keys(Purpose.BALL))
    kernel, precision = robust_kernel(s, x.device)
    stats = SmoothMaxStats()
    loss = smoothed_max_ce_backward(model, source, y, ctx.temperature,
                                    threshold=s.prune_threshold, kernel=kernel,
                                    precision=precision, stats=stats)
    if ctx.kept is not None:
        ctx.kept.add(stats.selected_samples / y.shape[0])
    return loss


def robust_kernel(settings: TrainSettings, device: torch.device) -> tuple[Kernel, Precision]:
    """The pass-1 kernel and precision the settings ask for on this device. `auto` is the
    chunked torch pass everywhere until a GPU measurement committed here shows the fused kernel
    faster (and doctor passes with it); an explicit `fused` that cannot run here is refused."""
    if settings.robust_kernel == "auto" or settings.robust_kernel == Kernel.CHUNKED.value:
        return Kernel.CHUNKED, Precision.IEEE
    reason = availability(device)
    if reason is not None:
        raise FusedUnavailable(reason)
    return Kernel.FUSED, Precision(settings.robust_precision)


ROBUST = MethodParts(_no_stage, _finish)
robust_step = eager_step(ROBUST)
