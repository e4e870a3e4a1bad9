"""The smoothed max of the cross-entropy over many samples per point: exact and memory-bounded.

For a batch of B points with N samples z_ij each, the loss is mean_i T * logsumexp_j(CE_ij / T).
N reaches ~2e5 (B*N ~ 2e7 samples), so neither the samples nor their activations may be held at
once. Two passes over chunks of samples do it:

1. without autograd: the CE of every sample (B*N numbers are kept; samples and activations are
   not) and from them the per-point normalizer lse_i = logsumexp_j(CE_ij / T);
2. with autograd, chunk by chunk: backward of sum_ij w_ij * CE_ij with the detached weights
   w_ij = p_ij / B, p_ij = exp(CE_ij / T - lse_i) the softmax over j. Its gradient is exactly the
   gradient of the loss, and each block's graph is freed before the next one is built.

Samples are regenerated in pass 2 (a source hands out the same chunk every time it is asked), not
stored. At low temperature nearly all softmax mass sits on a few samples per point: samples with
p_ij < threshold get no backward. Each point drops at most N * threshold of its unit mass, so the
gradient changes by at most N * threshold * max_j |grad CE_ij| / B per point (threshold 1e-13,
N = 194,796: < 2e-8 of one sample's gradient, below float32 rounding). The value is never pruned.

Everything also works for a pack of k trials trained as one batched model (`PackedMLP`): inputs
then carry a leading trial axis (x (k, B, d), y (k, B), chunks (k, B, m, d)), the model maps
(k, R, d) to (k, R, C), and the loss is per trial, (k,). Trial i of a pack draws the samples and
gets the gradient that a single run with its seed would.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from trainers import rng
from trainers.attacks import uniform_ball
from trainers.model import MLP
from trainers.packed import LAYERS, PackedMLP

# Rows per no-grad forward block on CPU (summed over a pack): three 8192 x 200 fp32 activations
# (~13 MB) stay near the caches and are reused, which runs the pass ~2x faster than calling the
# module on 65536-row chunks. CUDA takes whole chunks (its kernels want large matrices).
CPU_BLOCK_ROWS = 8192
# Rows per backward block on CPU: forward and backward activations of 4096 rows fit the caches.
CPU_BACKWARD_ROWS = 4096
# A chunk where more than this fraction of samples carries weight is backpropagated whole:
# gathering would copy nearly every sample and save no work.
FULL_CHUNK_FRACTION = 0.5


class SampleSource(Protocol):
    """Samples of a batch, in chunks along the sample axis; chunk(c) is the same on every call."""

    n_chunks: int

    def chunk(self, c: int) -> Tensor:
        """(B, m_c, d): samples m_c of every point; (k, B, m_c, d) for a pack of k trials."""
        ...


@dataclass
class SmoothMaxStats:
    """What one call did; lets tests and benchmarks see the pruning at work."""

    samples: int = 0            # B * N (times k for a pack)
    backward_samples: int = 0   # rows that went through a backward (a pack pads to equal counts)
    full_chunks: int = 0        # chunks backpropagated whole
    gathered_chunks: int = 0    # chunks whose weighted samples were gathered
    skipped_chunks: int = 0     # chunks with no sample above the threshold


def _offsets(n: int, batch: int, chunk_size: int) -> list[int]:
    """Chunk boundaries along the n samples: near-equal parts of about chunk_size samples of one
    trial each (no tiny last chunk; independent of the pack size, so packs draw what runs do)."""
    if n < 1 or chunk_size < 1:
        raise ValueError(f"need n >= 1 and chunk_size >= 1, got n={n}, chunk_size={chunk_size}")
    n_chunks = max(1, min(n, math.ceil(n * batch / chunk_size)))
    return [c * n // n_chunks for c in range(n_chunks + 1)]


class _BallSource:
    def __init__(self, x: Tensor, radius: float, n: int, chunk_size: int,
                 key: int | Sequence[int]) -> None:
        self.packed = x.dim() == 3
        keys = list(key) if isinstance(key, Sequence) else [key]
        if x.dim() not in (2, 3) or len(keys) != (x.shape[0] if self.packed else 1):
            raise ValueError(f"need x (B, d) with one seed or x (k, B, d) with k seeds, got "
                             f"x {tuple(x.shape)} and {len(keys)} seed(s)")
        self.x = x.detach()
        self.keys = rng.keys_tensor(keys, x.device)
        self.radius, self.n = radius, n
        self._offsets = _offsets(n, x.shape[-2], chunk_size)
        self.n_chunks = len(self._offsets) - 1

    def chunk(self, c: int) -> Tensor:
        lo, hi = self._offsets[c], self._offsets[c + 1]
        return uniform_ball(self.x, self.radius, self.keys, lo, hi - lo, self.n)


class _TensorSource:
    def __init__(self, samples: Tensor, chunk_size: int) -> None:
        if samples.dim() not in (3, 4):
            raise ValueError(f"need samples of shape (B, M, d) or (k, B, M, d), "
                             f"got {tuple(samples.shape)}")
        self.samples = samples.detach()
        self._offsets = _offsets(samples.shape[-2], samples.shape[-3], chunk_size)
        self.n_chunks = len(self._offsets) - 1

    def chunk(self, c: int) -> Tensor:
        return self.samples[..., self._offsets[c]:self._offsets[c + 1], :]


def uniform_ball_source(x: Tensor, radius: float, n: int, chunk_size: int,
                        seed: int | Sequence[int]) -> SampleSource:
    """n points uniform in the L-inf ball of `radius` around each row of x, in chunks of about
    chunk_size samples. `seed` is the stream's 64-bit key (trainers.rng.stream_key): sample j of
    point i is a pure function of (seed, i, j), so a chunk is regenerated in the backward pass
    instead of stored, and the samples are the same for any chunk_size, pack and device. For a
    pack, x is (k, B, d) with one seed per trial (chunk_size then counts the samples of one
    trial)."""
    return _BallSource(x, radius, n, chunk_size, seed)


def tensor_source(samples: Tensor, chunk_size: int) -> SampleSource:
    """Samples already made, (B, M, d) or (k, B, M, d) (a Langevin trajectory), in chunks of
    about chunk_size samples (of one trial)."""
    return _TensorSource(samples, chunk_size)


def _ce(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of each row, (k, R, C) and (k, R) -> (k, R); the same formula in both passes
    (cheaper than F.cross_entropy's per-row path on this shape)."""
    return torch.logsumexp(logits, -1) - logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)


def _logits(model: nn.Module, z: Tensor, packed: bool) -> Tensor:
    """Rows (k, R, d) -> logits (k, R, C); a single model (k = 1) gets plain (R, d) rows."""
    out: Tensor = model(z) if packed else model(z[0]).unsqueeze(0)
    return out


def _stacked_layers(model: nn.Module, packed: bool) -> list[tuple[Tensor, Tensor]] | None:
    """(weight (k, out, in), bias (k, 1, out)) per layer of the plain MLP or PackedMLP, else None
    (any other module is called as it is)."""
    if not packed and type(model) is MLP:
        return [(lay.weight.unsqueeze(0), lay.bias.view(1, 1, -1))
                for lay in (model.layer1, model.layer2, model.layer3)]
    if packed and type(model) is PackedMLP:
        return [(getattr(model, f"{name}_weight"), getattr(model, f"{name}_bias").unsqueeze(1))
                for name in LAYERS]
    return None


class _Forward:
    """No-grad CE of many rows. For the (packed) MLP on CPU the layers run as baddbmm into reused
    buffers with in-place ReLU: no fresh allocation (and page faults) per block, ~2x faster than
    the module call. Without autograd the generalized ReLU is the plain ReLU, so values agree."""

    def __init__(self, model: nn.Module, packed: bool, z: Tensor, fast: bool) -> None:
        self.model, self.packed = model, packed
        k = z.shape[0]
        cuda = z.device.type == "cuda"
        self.rows = None if cuda else max(1, CPU_BLOCK_ROWS // k)
        self.autocast = cuda and fast and z.dtype == torch.float32
        self.layers = None if cuda else _stacked_layers(model, packed)
        self.buffers = [torch.empty(k * (self.rows or 0) * w.shape[1], device=z.device,
                                    dtype=z.dtype) for w, _ in self.layers or []]

    def __call__(self, z: Tensor, y: Tensor, out: Tensor) -> None:
        """CE of the rows z (k, R, d) with labels y (k, R) into out (k, R)."""
        step = self.rows or z.shape[1]
        for r0 in range(0, z.shape[1], step):
            block = z[:, r0:r0 + step]
            logits = self._fused(block) if self.layers else self._module(block)
            out[:, r0:r0 + step] = _ce(logits.to(out.dtype), y[:, r0:r0 + step])

    def _module(self, z: Tensor) -> Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast \
                else contextlib.nullcontext():
            return _logits(self.model, z, self.packed)

    def _fused(self, z: Tensor) -> Tensor:
        assert self.layers is not None
        k, rows, _ = z.shape
        h = z
        for i, ((weight, bias), buf) in enumerate(zip(self.layers, self.buffers, strict=True)):
            nxt = buf[:k * rows * weight.shape[1]].view(k, rows, weight.shape[1])
            torch.baddbmm(bias, h, weight.transpose(1, 2), out=nxt)
            if i < len(self.layers) - 1:
                nxt.relu_()
            h = nxt
        return h


def _rows(chunk: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """A (k, B, m, d) chunk as (k, B*m, d) rows, point-major, with each row's label (k, B*m)."""
    k, b, m, d = chunk.shape
    return chunk.reshape(k, b * m, d), y.repeat_interleave(m, dim=1)


@dataclass
class _Normalizer:
    ce: list[Tensor]       # per chunk, (k, B, m_c)
    lse: Tensor            # (k, B): logsumexp_j(CE_ij / T)


def _normalizer_pass(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
                     packed: bool, fast: bool) -> _Normalizer:
    ce_chunks: list[Tensor] = []
    lse_chunks: list[Tensor] = []
    forward: _Forward | None = None
    with torch.no_grad():
        for c in range(source.n_chunks):
            chunk = _as_pack(source.chunk(c), packed)
            z, yr = _rows(chunk, y)
            forward = forward or _Forward(model, packed, z, fast)
            ce = torch.empty(yr.shape, device=z.device, dtype=z.dtype)
            forward(z, yr, ce)
            ce = ce.view(chunk.shape[:3])
            ce_chunks.append(ce)
            lse_chunks.append(torch.logsumexp(ce / temperature, -1))
        lse = torch.logsumexp(torch.stack(lse_chunks, -1), -1)
    return _Normalizer(ce_chunks, lse)


class _Backward:
    """Backward of sum w * CE over rows (k, R, d), in blocks of bounded size."""

    def __init__(self, model: nn.Module, packed: bool, rows: int, stats: SmoothMaxStats) -> None:
        self.model, self.packed, self.rows, self.stats = model, packed, rows, stats
        self.pending: list[tuple[Tensor, Tensor, Tensor]] = []
        self.n_pending = 0

    def run(self, z: Tensor, y: Tensor, w: Tensor) -> None:
        """Backward now, block by block (a whole chunk)."""
        for r0 in range(0, z.shape[1], self.rows):
            r1 = r0 + self.rows
            self._backward(z[:, r0:r1], y[:, r0:r1], w[:, r0:r1])

    def add(self, z: Tensor, y: Tensor, w: Tensor) -> None:
        """Queue a few gathered rows; backward once a block's worth is queued."""
        self.pending.append((z, y, w))
        self.n_pending += z.shape[1]
        if self.n_pending >= self.rows:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        z, y, w = (torch.cat(parts, 1) for parts in zip(*self.pending, strict=True))
        self.pending, self.n_pending = [], 0
        self.run(z, y, w)

    def _backward(self, z: Tensor, y: Tensor, w: Tensor) -> None:
        self.stats.backward_samples += z.shape[0] * z.shape[1]
        (_ce(_logits(self.model, z, self.packed), y) * w).sum().backward()


def _gather(z: Tensor, y: Tensor, w: Tensor, keep: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The kept rows of each trial, in order, padded to the largest count with weight-0 rows (a
    batched model needs equal counts; a zero weight adds exactly nothing)."""
    counts = keep.sum(1)
    width = int(counts.max())
    order = torch.sort(keep.to(torch.uint8), dim=1, descending=True, stable=True).indices
    order = order[:, :width]
    valid = torch.arange(width, device=z.device) < counts.unsqueeze(1)
    z_sel = z.gather(1, order.unsqueeze(-1).expand(-1, -1, z.shape[-1]))
    return z_sel, y.gather(1, order), torch.where(valid, w.gather(1, order), 0.0)


def _weighted_pass(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
                   norm: _Normalizer, threshold: float, packed: bool,
                   stats: SmoothMaxStats) -> None:
    batch = y.shape[1]
    on_cpu = norm.lse.device.type == "cpu"
    rows = max(1, CPU_BACKWARD_ROWS // y.shape[0]) if on_cpu else max(c[0].numel() for c in norm.ce)
    back = _Backward(model, packed, rows, stats)
    with torch.enable_grad():
        for c, ce in enumerate(norm.ce):
            p = torch.exp(ce / temperature - norm.lse.unsqueeze(-1))
            keep = p >= threshold
            n_keep = int(keep.sum())
            if n_keep == 0:
                stats.skipped_chunks += 1
                continue
            chunk = _as_pack(source.chunk(c), packed)
            if chunk.shape[:3] != ce.shape:
                raise RuntimeError(f"sample source chunk {c} changed shape between passes: "
                                   f"{tuple(ce.shape)} then {tuple(chunk.shape[:3])}")
            z, yr = _rows(chunk, y)
            w = (p / batch).flatten(1)
            if n_keep > FULL_CHUNK_FRACTION * keep.numel():
                stats.full_chunks += 1
                back.run(z, yr, w)
            else:
                stats.gathered_chunks += 1
                back.add(*_gather(z, yr, w, keep.flatten(1)))
        back.flush()


def _as_pack(t: Tensor, packed: bool) -> Tensor:
    return t if packed else t.unsqueeze(0)


def smoothed_max_ce_backward(model: nn.Module, source: SampleSource, y: Tensor,
                             temperature: float, *, threshold: float = 1e-13, fast: bool = False,
                             stats: SmoothMaxStats | None = None) -> Tensor:
    """Loss mean_i T * logsumexp_j(CE(z_ij, y_i) / T), detached; its gradient is ADDED to the
    parameters' .grad (the caller zeroes them), computed chunk by chunk so memory does not grow
    with N. y (B,) gives a scalar; y (k, B) (a pack, model mapping (k, R, d) -> (k, R, C)) gives
    the (k,) losses of the trials, and the gradient of their sum.

    threshold: samples with softmax weight p_ij < threshold get no backward; per point the
    dropped mass is <= N * threshold, so the gradient error is <= N * threshold times the largest
    per-sample CE gradient, divided by B (0 disables pruning; the value is always exact).
    fast: on CUDA with float32, the no-grad pass (CE values, normalizer, weights) runs under bf16
    autocast: ~3 significant digits, so the loss value is off by ~1e-3 relative and weights by
    ~1e-3 * |logits| / T relative (at low T, near-ties may swap which sample dominates); the
    backward stays exact fp32, so the gradient is an exact convex combination of per-sample
    gradients with perturbed weights. Ignored on CPU and in float64.
    stats: filled with what was done (counts of samples, backward rows, chunk kinds).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if source.n_chunks < 1:
        raise ValueError("sample source has no chunks")
    packed = y.dim() == 2
    y = _as_pack(y, packed)
    stats = stats if stats is not None else SmoothMaxStats()
    norm = _normalizer_pass(model, source, y, temperature, packed, fast)
    stats.samples += sum(c.numel() for c in norm.ce)
    _weighted_pass(model, source, y, temperature, norm, threshold, packed, stats)
    loss = (temperature * norm.lse).mean(-1)
    return loss if packed else loss[0]
