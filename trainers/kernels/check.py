"""The fused pass against the chunked fp32 pass on one batch: what `drosweep doctor` checks on
the device (where the tensor cores really round), and the tests check under the interpreter."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainers.attacks import uniform_ball
from trainers.kernels.certificate import Precision
from trainers.kernels.fused_ce import fused_scores
from trainers.smoothmax import (
    Kernel,
    SmoothMaxStats,
    _Forward,
    _stacked_layers,
    prune_margin,
    smoothed_max_ce_backward,
    uniform_ball_source,
)


@dataclass(frozen=True)
class FusedCheck:
    precision: Precision
    samples: int               # B * N
    samples_identical: bool    # the kernel's draws against `uniform_ball`, bit for bit
    ce_max_abs_diff: float     # |CE fused - CE fp32| over every sample
    bound_violations: int      # samples with |CE~ - CE_fp32| > err (certified precisions)
    kept: int                  # samples the fp32 path keeps (weight >= threshold)
    kept_missing: int          # of those, ruled out by the fused pass (must be 0; in fp32,
                               # beyond rounding's reach of the threshold)
    candidates: int            # samples the fused pass keeps or sends to the fp32 recompute
    loss_rel_diff: float
    grad_rel_diff: float

    @property
    def ok(self) -> bool:
        # fp32 rounding: CE agree to ~1e-6 relative; the loss and gradient of the same kept
        # samples to 1e-5 relative (the smoothed max amplifies CE rounding by up to 1/T * 1e-7)
        return (self.samples_identical and self.bound_violations == 0 and self.kept_missing == 0
                and self.loss_rel_diff <= 1e-5 and self.grad_rel_diff <= 1e-4)


def _grads(model: nn.Module) -> list[Tensor]:
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def compare_fused(model: nn.Module, x: Tensor, y: Tensor, key: int, radius: float, n: int,
                  temperature: float, precision: Precision, threshold: float = 1e-13,
                  chunk_size: int = 1 << 16) -> FusedCheck:
    """One (single-trial) batch x (B, d), y (B,) through both passes."""
    layers = _stacked_layers(model, False)
    if layers is None:
        raise ValueError("compare_fused needs the MLP")
    keys = torch.tensor([key], dtype=torch.int64, device=x.device)
    xs, ys = x.unsqueeze(0), y.unsqueeze(0)
    with torch.no_grad():
        out = fused_scores(layers, xs, ys, keys, radius, n, precision, store_samples=True)
        want = uniform_ball(xs, radius, keys, 0, n, n)
        rows = want.reshape(1, -1, x.shape[-1])
        yr = ys.repeat_interleave(n, 1)
        exact = torch.empty(yr.shape, device=x.device, dtype=x.dtype)
        _Forward(model, False, rows)(rows, yr, exact)
    exact = exact.view(out.ce.shape)
    lse = torch.logsumexp(exact / temperature, -1, keepdim=True)
    p = torch.exp(exact / temperature - lse)
    kept = p >= threshold
    diff = float((out.ce - exact).abs().max())
    if out.err is not None:
        violations = int(((out.ce - exact).abs() > out.err).sum())
        lower = (out.ce - out.err).amax(-1, keepdim=True)
        candidate = out.ce + out.err >= lower - prune_margin(temperature, threshold)
        must = kept
    else:  # fp32 both: a sample within rounding of the threshold may fall either way
        violations = 0
        fused_lse = torch.logsumexp(out.ce / temperature, -1, keepdim=True)
        candidate = torch.exp(out.ce / temperature - fused_lse) >= threshold
        must = p >= threshold * torch.exp(torch.tensor(2 * diff / temperature)).item()
    results = []
    for kernel in (Kernel.CHUNKED, Kernel.FUSED):
        model.zero_grad(set_to_none=True)
        source = uniform_ball_source(x, radius, n, chunk_size, key)
        loss = smoothed_max_ce_backward(model, source, y, temperature, threshold=threshold,
                                        kernel=kernel, precision=precision,
                                        stats=SmoothMaxStats())
        results.append((loss, _grads(model)))
    model.zero_grad(set_to_none=True)
    (l0, g0), (l1, g1) = results
    grad_rel = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
                   for a, b in zip(g1, g0, strict=True))
    return FusedCheck(precision=precision, samples=exact.numel(),
                      samples_identical=bool(torch.equal(out.samples, want)) if out.samples
                      is not None else False,
                      ce_max_abs_diff=diff,
                      bound_violations=violations, kept=int(kept.sum()),
                      kept_missing=int((must & ~candidate).sum()),
                      candidates=int(candidate.sum()),
                      loss_rel_diff=float((l1 - l0).abs() / l0.abs().clamp_min(1e-30)),
                      grad_rel_diff=grad_rel)
