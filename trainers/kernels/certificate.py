"""A rigorous per-sample bound on |CE computed in a tensor-core precision - CE of the fp32 path|.

Why: the fused pass may run its layer-2/3 products on tensor cores (3×TF32 or 3×BF16). Pruning
at low T keeps the samples within margin = T ln(1/threshold) of their point's maximum; a sample
whose interval [CE - err, CE + err] lies wholly below max_j (CE_j - err_j) - margin is pruned by
the fp32 path too, and every other sample is recomputed in fp32. The kept set, loss and gradient
are then the fp32 path's. The derivation is in docs/NUMERICS.md ("The tensor-core certificate").

Shapes: a pack of k MLPs, layers (weight (k, out, in), bias (k, 1, out)); rows (k, R, d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from trainers.kernels.precision import U_TF32, Precision

# units of rounding. The operand splits are the kernel's own, to nearest (their units:
# trainers/kernels/precision.py); the accumulation's order and rounding are the hardware's, so it
# gets truncation's unit (twice round-to-nearest's)
U_FP32 = 2.0 ** -24          # the fp32 path (IEEE round-to-nearest)
U_ACC = 2.0 ** -23           # tensor-core fp32 accumulation
# the bound's own arithmetic (a few fp32 operations on nonnegative terms) and second-order terms
SLACK = 1 + 2.0 ** -10


def gamma(n: int, u: float) -> float:
    """gamma_n = n u / (1 - n u): relative error bound of an n-term float sum (Higham)."""
    if n * u >= 1:
        raise ValueError(f"gamma_{n} undefined for u = {u}")
    return n * u / (1 - n * u)


def split_product_error(precision: Precision, n: int) -> float:
    """c such that |computed (W h + b) - exact| <= c (|W| |h| + |b|) for one layer of n products
    (exact input h and weights) as the fused kernel computes it in `precision`.

    IEEE: n products and the bias in fp32, any order: gamma_{n+1}. x3: a = hi + lo + e with
    hi = r(a), lo = r(a - hi), |lo| <= u (1+u) |a|, |e| <= u^2 |a|; the kernel sums the 2n small
    products hi·lo + lo·hi first (each exact in fp32: 11×11 or 8×8 bits; abs sum <= 2u (1+u)^2 P,
    P = |W||h|), then the n products hi·hi (abs sum <= (1+u)^2 P) into the same accumulator, then
    adds the bias. It misses lo·lo + (hi+lo) e_b + e_a b: kappa P, kappa = u^2 (1+u)^2
    + 2 u^2 (1+u^2) + u^4. Rounding: gamma_{2n} on the small sum, gamma_{n+1} on the rest
    (the small sum, n products, the bias) — with the accumulation unit of truncation, which also
    covers tensor cores that add a block of m products aligned to the largest (m 2^-22 per
    block, n/m blocks: below (n+1) 2^-23 for m = 8, n = 200)."""
    if precision is Precision.IEEE:
        return gamma(n + 1, U_ACC)
    u = precision.unit
    kappa = u * u * (1 + u) ** 2 + 2 * u * u * (1 + u * u) + u ** 4
    small = 2 * u * (1 + u) ** 2
    return (kappa + gamma(2 * n, U_ACC) * small
            + gamma(n + 1, U_ACC) * ((1 + u) ** 2 + small * (1 + gamma(2 * n, U_ACC))))


def nonneg_dot_inflation(n: int) -> float:
    """A product of nonnegative operands taken in plain tf32 (one pass) is low by at most this
    factor's inverse: v_true <= v * inflation (tf32 operands by truncation's unit, 2^-10, as
    the hardware may take fp32 inputs). The bound's own products use it."""
    return 1 / ((1 - 2 * U_TF32) ** 2 * (1 - gamma(n, U_ACC)))


@dataclass(frozen=True)
class Certificate:
    """The bound's matrices and constants for one pack of MLPs and one precision.

    Per sample, the logits' error vector is
      Delta = a3 * (|W3| h2) + a2 * (|W3||W2| h1) + a1 * (|W3||W2||W1| |z|) + const
    with h1, h2 the computed (nonnegative) activations; then
      err = SLACK (max_q Delta_q + Delta_y) + 16 U_FP32 (|logits|_inf + max_q Delta_q + 4).
    """

    m1: Tensor      # (k, d, C): (|W3||W2||W1|)^T
    m2: Tensor      # (k, H, C): (|W3||W2|)^T
    m3: Tensor      # (k, H, C): |W3|^T
    const: Tensor   # (k, 1, C)
    a1: float
    a2: float
    a3: float

    @classmethod
    def build(cls, layers: list[tuple[Tensor, Tensor]], precision: Precision,
              bound_inflation: float = 1.0) -> Certificate:
        """bound_inflation: the factor by which the caller's products |W| h may be low (1 when
        they are exact or fp32 upward-safe; `nonneg_dot_inflation` for a one-pass tf32 dot)."""
        (w1, b1), (w2, b2), (w3, b3) = ((w.detach().double(), b.detach().double())
                                        for w, b in layers)
        d, hidden = w1.shape[2], w2.shape[2]
        # ours plus the fp32 path's own error, per layer (layer 1 runs in fp32 on both sides)
        e1 = 2 * gamma(d + 1, U_ACC)
        c2 = split_product_error(precision, hidden) + gamma(hidden + 1, U_FP32)
        c3 = split_product_error(precision, w3.shape[2]) + gamma(w3.shape[2] + 1, U_FP32)
        a3m = w3.abs()
        a32 = a3m @ w2.abs()
        const = (c3 * b3.abs().transpose(1, 2) + c2 * (a3m @ b2.abs().transpose(1, 2))
                 + e1 * (a32 @ b1.abs().transpose(1, 2))).transpose(1, 2)
        up = 1 + 2.0 ** -20  # the float64 -> float32 rounding of the matrices, upward
        f32 = torch.float32
        return cls(m1=((a32 @ w1.abs()).transpose(1, 2) * up).to(f32),
                   m2=(a32.transpose(1, 2) * up).to(f32), m3=(a3m.transpose(1, 2) * up).to(f32),
                   const=(const * up * bound_inflation).to(f32), a1=e1 * bound_inflation,
                   a2=c2 * bound_inflation, a3=c3 * bound_inflation)

    def delta(self, z: Tensor, h1: Tensor, h2: Tensor) -> Tensor:
        """Delta (k, R, C) from the rows z (k, R, d) and their activations h1, h2 (k, R, H)."""
        return (torch.baddbmm(self.const, h2, self.m3, alpha=self.a3)
                .baddbmm_(h1, self.m2, alpha=self.a2).baddbmm_(z.abs(), self.m1, alpha=self.a1))


def ce_error(delta: Tensor, logits: Tensor, y: Tensor) -> Tensor:
    """err (k, R) from Delta and the logits (k, R, C) and labels (k, R): lse is 1-Lipschitz in
    the inf-norm and the label's logit moves by Delta_y; plus the CE's own fp32 evaluation on
    both sides."""
    worst = delta.amax(-1)
    at_y = delta.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    scale = logits.abs().amax(-1)
    return (worst + at_y) * SLACK + (scale + worst + 4) * (16 * U_FP32)


def round_operand(t: Tensor, precision: Precision) -> Tensor:
    """t (fp32) rounded as the tensor cores take it: bf16 by round-to-nearest-even, tf32 by
    round-to-nearest (ties away, as cvt.rna.tf32.f32)."""
    if precision is Precision.BF16X3:
        return t.to(torch.bfloat16).to(torch.float32)
    if precision is Precision.TF32X3:
        bits = t.contiguous().view(torch.int32)
        rounded = (bits + (1 << 12)) & ~((1 << 13) - 1)
        keep = torch.isfinite(t)
        return torch.where(keep, rounded.view(torch.float32), t)
    return t


def split_matmul(a: Tensor, b: Tensor, precision: Precision) -> Tensor:
    """a @ b (batched, fp32) as the x3 tensor-core scheme computes it: hi·hi + hi·lo + lo·hi of
    rounded operands, the products exact, accumulated in fp32. IEEE: a plain fp32 matmul."""
    if precision is Precision.IEEE:
        return a @ b
    ah = round_operand(a, precision)
    al = round_operand(a - ah, precision)
    bh = round_operand(b, precision)
    bl = round_operand(b - bh, precision)
    return (ah @ bl + al @ bh) + ah @ bh


def emulated_scores(layers: list[tuple[Tensor, Tensor]], z: Tensor, y: Tensor,
                    precision: Precision) -> tuple[Tensor, Tensor]:
    """CE (k, R) of the rows z (k, R, d) with layers 2 and 3 computed as `precision` would on
    tensor cores, and the certificate's err (k, R): the CPU's stand-in for the fused kernel's
    arithmetic, to check the bound on every sample."""
    (w1, b1), (w2, b2), (w3, b3) = ((w.detach(), b.detach()) for w, b in layers)
    h1 = torch.baddbmm(b1, z, w1.transpose(1, 2)).relu_()
    h2 = (split_matmul(h1, w2.transpose(1, 2), precision) + b2).relu_()
    logits = split_matmul(h2, w3.transpose(1, 2), precision) + b3
    ce = torch.logsumexp(logits, -1) - logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    cert = Certificate.build(list(layers), precision)
    return ce, ce_error(cert.delta(z, h1, h2), logits, y)


def margin(temperature: float, threshold: float) -> float:
    """T ln(1 / threshold): a sample this far below its point's maximum CE has softmax weight
    below the threshold (inf without pruning)."""
    return temperature * math.log(1 / threshold) if threshold > 0 else math.inf
