"""`robust`: per training point, the smoothed max T*logsumexp(CE/T) over N(eps) uniform ball points.

Exact and memory-bounded through the chunked two-pass smoothed max (trainers.smoothmax); the N
samples are regenerated from a per-step seed of each trial rather than stored.
"""

from __future__ import annotations

from torch import Tensor, nn

from trainers.methods.base import StepContext, draw_seed
from trainers.smoothmax import smoothed_max_ce_backward, uniform_ball_source
from trainers.spec import n_ball_samples


def robust_step(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
    s = ctx.spec.settings
    n = n_ball_samples(ctx.spec.radius, s)
    seeds = [draw_seed(g) for g in ctx.seed_generators]
    source = uniform_ball_source(x, ctx.spec.radius, n, s.chunk_size, seeds)
    return smoothed_max_ce_backward(model, source, y, ctx.temperature,
                                    threshold=s.prune_threshold, preselect=s.preselect)
