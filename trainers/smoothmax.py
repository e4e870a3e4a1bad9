"""The smoothed max of the cross-entropy over many samples per point: exact and memory-bounded.

For a batch of B points with N samples z_ij each, the loss is mean_i T * logsumexp_j(CE_ij / T).
N reaches ~2e5 (B*N ~ 2e7 samples), so neither the samples nor their activations may be held at
once. Two passes over chunks of samples do it:

1. without autograd: the CE of every sample (B*N numbers are kept; samples and activations are
   not) and from them the per-point normalizer lse_i = logsumexp_j(CE_ij / T);
2. with autograd, chunk by chunk: backward of sum_ij w_ij * CE_ij with the detached weights
   w_ij = p_ij / B, p_ij = exp(CE_ij / T - lse_i) the softmax over j. Its gradient is exactly the
   gradient of the loss, and each chunk's graph is freed before the next one is built.

Samples are regenerated in pass 2 (a source hands out the same chunk every time it is asked), not
stored. At low temperature nearly all softmax mass sits on a few samples per point: samples with
p_ij < threshold get no backward. Each point drops at most N * threshold of its unit mass, so the
gradient changes by at most N * threshold * max_j |grad CE_ij| / B per point (threshold 1e-13,
N = 194,796: < 2e-8 of one sample's gradient, below float32 rounding). The value is never pruned.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Protocol, TypeGuard

import torch
from torch import Tensor, nn

from trainers.attacks import uniform_ball
from trainers.model import MLP

# Rows per forward block on CPU: three 8192 x 200 fp32 activations (~13 MB) stay near the caches,
# which runs the no-grad pass ~1.3x faster than 65536-row blocks on this MLP. CUDA takes whole
# chunks (its kernels want large matrices).
CPU_BLOCK_ROWS = 8192
# Rows per backward block on CPU: forward + backward activations of 4096 rows fit the caches.
CPU_BACKWARD_ROWS = 4096
# A chunk where more than this fraction of samples carries weight is backpropagated whole:
# gathering would copy nearly every sample and save no work.
FULL_CHUNK_FRACTION = 0.5

_MASK64 = (1 << 64) - 1


class SampleSource(Protocol):
    """Samples of a batch, in chunks along the sample axis; chunk(c) is the same on every call."""

    n_chunks: int

    def chunk(self, c: int) -> Tensor:
        """(B, m_c, d): samples m_c of every point."""
        ...


@dataclass
class SmoothMaxStats:
    """What one call did; lets tests and benchmarks see the pruning at work."""

    samples: int = 0            # B * N
    backward_samples: int = 0   # samples that went through a backward
    full_chunks: int = 0        # chunks backpropagated whole
    gathered_chunks: int = 0    # chunks whose weighted samples were gathered
    skipped_chunks: int = 0     # chunks with no sample above the threshold


def _chunk_seed(seed: int, c: int) -> int:
    """A 63-bit seed for chunk c (splitmix64 of the pair): neighbouring step seeds share no chunk."""
    z = (seed * 0x9E3779B97F4A7C15 + (c + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def _split(n: int, n_chunks: int) -> list[int]:
    """Offsets of n items in n_chunks near-equal parts (no tiny last chunk)."""
    return [c * n // n_chunks for c in range(n_chunks + 1)]


class _BallSource:
    def __init__(self, x: Tensor, radius: float, n: int, chunk_size: int, seed: int) -> None:
        if n < 1 or chunk_size < 1:
            raise ValueError(f"need n >= 1 and chunk_size >= 1, got n={n}, chunk_size={chunk_size}")
        self.x = x.detach()
        self.radius = radius
        self.seed = seed
        self.n_chunks = max(1, min(n, math.ceil(n * x.shape[0] / chunk_size)))
        self._offsets = _split(n, self.n_chunks)

    def chunk(self, c: int) -> Tensor:
        gen = torch.Generator(device=self.x.device)
        gen.manual_seed(_chunk_seed(self.seed, c))
        width = self._offsets[c + 1] - self._offsets[c]
        return uniform_ball(self.x, self.radius, width, gen)


class _TensorSource:
    def __init__(self, samples: Tensor, chunk_size: int) -> None:
        if samples.dim() != 3 or samples.shape[1] < 1 or chunk_size < 1:
            raise ValueError(f"need samples of shape (B, M >= 1, d) and chunk_size >= 1, "
                             f"got {tuple(samples.shape)} and {chunk_size}")
        self.samples = samples.detach()
        b, m, _ = samples.shape
        self.n_chunks = max(1, min(m, math.ceil(m * b / chunk_size)))
        self._offsets = _split(m, self.n_chunks)

    def chunk(self, c: int) -> Tensor:
        return self.samples[:, self._offsets[c]:self._offsets[c + 1]]


def uniform_ball_source(x: Tensor, radius: float, n: int, chunk_size: int,
                        seed: int) -> SampleSource:
    """n points uniform in the L-inf ball of `radius` around each row of x, in chunks of about
    chunk_size samples; chunk c comes from its own generator seeded from (seed, c) on x.device, so
    it is regenerated in the backward pass instead of stored."""
    return _BallSource(x, radius, n, chunk_size, seed)


def tensor_source(samples: Tensor, chunk_size: int) -> SampleSource:
    """Samples already made, (B, M, d) (a Langevin trajectory), in chunks of about chunk_size."""
    return _TensorSource(samples, chunk_size)


def _ce(logits: Tensor, y: Tensor) -> Tensor:
    """Per-row cross-entropy; the same formula in both passes."""
    return torch.logsumexp(logits, 1) - logits.gather(1, y.unsqueeze(1)).squeeze(1)


def _is_plain_mlp(model: nn.Module) -> TypeGuard[MLP]:
    return isinstance(model, MLP) and type(model).forward is MLP.forward


class _Forward:
    """No-grad CE of many rows. For the plain MLP on CPU the layers run as addmm into reused
    buffers with in-place ReLU: no fresh allocation (and page faults) per block, ~2x faster than
    the module call. Without autograd the generalized ReLU is the plain ReLU, so values agree."""

    def __init__(self, model: nn.Module, device: torch.device, dtype: torch.dtype,
                 fast: bool) -> None:
        self.model = model
        self.cuda = device.type == "cuda"
        self.block = None if self.cuda else CPU_BLOCK_ROWS
        self.autocast = self.cuda and fast and dtype == torch.float32
        self.layers: list[nn.Linear] | None = None
        self.buffers: list[Tensor] = []
        if not self.cuda and _is_plain_mlp(model):
            self.layers = [model.layer1, model.layer2, model.layer3]
            self.buffers = [torch.empty(CPU_BLOCK_ROWS, layer.out_features, device=device,
                                        dtype=dtype)
                            for layer in self.layers]

    def __call__(self, z: Tensor, y: Tensor, out: Tensor) -> None:
        """CE of the rows z (K, d) with labels y (K,) into out (K,)."""
        block = self.block or z.shape[0]
        for r0 in range(0, z.shape[0], block):
            r1 = min(r0 + block, z.shape[0])
            logits = self._mlp(z[r0:r1]) if self.layers else self._module(z[r0:r1])
            out[r0:r1] = _ce(logits.to(out.dtype), y[r0:r1])

    def _module(self, z: Tensor) -> Tensor:
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast \
            else contextlib.nullcontext()
        with ctx:
            logits: Tensor = self.model(z)
        return logits

    def _mlp(self, z: Tensor) -> Tensor:
        assert self.layers is not None
        h = z
        last = len(self.layers) - 1
        for i, (layer, buf) in enumerate(zip(self.layers, self.buffers, strict=True)):
            nxt = buf[:h.shape[0]]
            torch.addmm(layer.bias, h, layer.weight.t(), out=nxt)
            if i < last:
                nxt.relu_()
            h = nxt
        return h


def _rows(chunk: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """A (B, m, d) chunk as (B*m, d) rows, point-major, with each row's label."""
    b, m, d = chunk.shape
    return chunk.reshape(b * m, d), y.repeat_interleave(m)


@dataclass
class _Pass1:
    ce: list[Tensor]       # per chunk, (B, m_c)
    lse: Tensor            # (B,) logsumexp_j(CE_ij / T)


def _normalizer_pass(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
                     fast: bool) -> _Pass1:
    ce_chunks: list[Tensor] = []
    lse_chunks: list[Tensor] = []
    forward: _Forward | None = None
    with torch.no_grad():
        for c in range(source.n_chunks):
            chunk = source.chunk(c)
            if forward is None:
                forward = _Forward(model, chunk.device, chunk.dtype, fast)
            z, yr = _rows(chunk, y)
            ce = torch.empty(z.shape[0], device=z.device, dtype=z.dtype)
            forward(z, yr, ce)
            ce = ce.view(chunk.shape[0], chunk.shape[1])
            ce_chunks.append(ce)
            lse_chunks.append(torch.logsumexp(ce / temperature, 1))
        lse = torch.logsumexp(torch.stack(lse_chunks, 1), 1)
    return _Pass1(ce_chunks, lse)


class _Backward:
    """Accumulates backward calls of sum w * CE over rows, in blocks of bounded size."""

    def __init__(self, model: nn.Module, block: int, stats: SmoothMaxStats) -> None:
        self.model = model
        self.block = block
        self.stats = stats
        self.pending: list[tuple[Tensor, Tensor, Tensor]] = []
        self.n_pending = 0

    def run(self, z: Tensor, y: Tensor, w: Tensor) -> None:
        """Backward now, in blocks (a whole chunk)."""
        for r0 in range(0, z.shape[0], self.block):
            r1 = min(r0 + self.block, z.shape[0])
            self._backward(z[r0:r1], y[r0:r1], w[r0:r1])

    def add(self, z: Tensor, y: Tensor, w: Tensor) -> None:
        """Queue a few gathered rows; backward once a block's worth is queued."""
        self.pending.append((z, y, w))
        self.n_pending += z.shape[0]
        if self.n_pending >= self.block:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        z, y, w = (torch.cat(parts) for parts in zip(*self.pending, strict=True))
        self.pending, self.n_pending = [], 0
        self.run(z, y, w)

    def _backward(self, z: Tensor, y: Tensor, w: Tensor) -> None:
        self.stats.backward_samples += z.shape[0]
        (_ce(self.model(z), y) * w).sum().backward()


def _weighted_pass(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
                   p1: _Pass1, threshold: float, stats: SmoothMaxStats) -> None:
    batch = y.shape[0]
    device = p1.lse.device
    block = CPU_BACKWARD_ROWS if device.type == "cpu" else max(1, max(c.numel() for c in p1.ce))
    back = _Backward(model, block, stats)
    with torch.enable_grad():
        for c, ce in enumerate(p1.ce):
            p = torch.exp(ce / temperature - p1.lse.unsqueeze(1))
            keep = p >= threshold
            n_keep = int(keep.sum())
            if n_keep == 0:
                stats.skipped_chunks += 1
                continue
            chunk = source.chunk(c)
            if chunk.shape[:2] != ce.shape:
                raise RuntimeError(f"sample source chunk {c} changed shape between passes: "
                                   f"{tuple(ce.shape)} then {tuple(chunk.shape[:2])}")
            w = p / batch
            if n_keep > FULL_CHUNK_FRACTION * keep.numel():
                stats.full_chunks += 1
                z, yr = _rows(chunk, y)
                back.run(z, yr, w.reshape(-1))
            else:
                stats.gathered_chunks += 1
                bi, ji = keep.nonzero(as_tuple=True)
                back.add(chunk[bi, ji], y[bi], w[bi, ji])
        back.flush()


def smoothed_max_ce_backward(model: nn.Module, source: SampleSource, y: Tensor,
                             temperature: float, *, threshold: float = 1e-13, fast: bool = False,
                             stats: SmoothMaxStats | None = None) -> Tensor:
    """Loss mean_i T * logsumexp_j(CE(z_ij, y_i) / T), detached; its gradient is ADDED to the
    parameters' .grad (the caller zeroes them), computed chunk by chunk so memory does not grow
    with N.

    threshold: samples with softmax weight p_ij < threshold get no backward; per point the
    dropped mass is <= N * threshold, so the gradient error is <= N * threshold times the largest
    per-sample CE gradient, divided by B (0 disables pruning; the value is always exact).
    fast: on CUDA with float32, the no-grad pass (CE values, normalizer, weights) runs under bf16
    autocast: ~3 significant digits, so the loss value is off by ~1e-3 relative and weights by
    ~1e-3 * |logits| / T relative (at low T, near-ties may swap which sample dominates); the
    backward stays exact fp32, so the gradient is an exact convex combination of per-sample
    gradients with perturbed weights. Ignored on CPU and in float64.
    stats: filled with what was done (counts of samples, backward samples, chunk kinds).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if source.n_chunks < 1:
        raise ValueError("sample source has no chunks")
    stats = stats if stats is not None else SmoothMaxStats()
    p1 = _normalizer_pass(model, source, y, temperature, fast)
    stats.samples += sum(c.numel() for c in p1.ce)
    _weighted_pass(model, source, y, temperature, p1, threshold, stats)
    return (temperature * p1.lse).mean()

