"""`robust`: per training point, the smoothed max T*logsumexp(CE/T) over N(eps) uniform ball points.

Exact and memory-bounded through the chunked two-pass smoothed max (trainers.smoothmax); the N
samples are regenerated from each trial's counter stream of the step rather than stored. The step
has no static stage: which chunks its backward visits is read on the host once per step.
"""

from __future__ import annotations

from torch import Tensor, nn

from trainers.methods.base import MethodParts, Stage, StepContext, eager_step
from trainers.rng import Purpose
from trainers.smoothmax import smoothed_max_ce_backward, uniform_ball_source
from trainers.spec import n_ball_samples


def _no_stage(ctx: StepContext) -> Stage | None:
    return None


def _finish(model: nn.Module, x: Tensor, y: Tensor, ctx: StepContext,
            outs: tuple[Tensor, ...]) -> Tensor:
    s = ctx.spec.settings
    n = n_ball_samples(ctx.spec.radius, s)
    source = uniform_ball_source(x, ctx.spec.radius, n, s.chunk_for(x.device.type),
                                 ctx.stream_keys(Purpose.BALL))
    return smoothed_max_ce_backward(model, source, y, ctx.temperature,
                                    threshold=s.prune_threshold, preselect=s.preselect)


ROBUST = MethodParts(_no_stage, _finish)
robust_step = eager_step(ROBUST)
