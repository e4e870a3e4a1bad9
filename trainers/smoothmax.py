"""The smoothed max of the cross-entropy over many samples per point: exact and memory-bounded.

For B points with N samples each the loss is mean_i T * logsumexp_j(CE_ij / T); N reaches ~2e5,
so neither the samples nor their activations may be held at once. Two passes over chunks do it:
pass 1 without autograd keeps only each sample's CE and the per-point normalizer; pass 2, chunk by
chunk, back-propagates the detached softmax weights times CE, which is exactly the loss's
gradient. Between them the host reads once how many samples each chunk keeps (`_select`); pass 2
regenerates only those (whole chunks, or single samples by (point, index)). Samples below the
pruning threshold get no backward (the value is never pruned). Pass 1 may instead run as one
fused kernel (trainers.kernels). A pack of k trials (`PackedMLP`) carries a leading trial axis and
gets, per trial, the samples and gradient a single run with its seed would.

The passes, the pruning bound and the certificate's proof: docs/NUMERICS.md.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from trainers import rng
from trainers.attacks import uniform_ball, uniform_ball_at
from trainers.kernels.certificate import Precision
from trainers.kernels.certificate import margin as prune_margin
from trainers.kernels.fused_ce import FusedUnavailable, fused_scores
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
# The largest pruning margin T ln(1/threshold), in CE units, at which a tensor-core pass is
# certified (at T = 1 the margin is 30: every sample would be a candidate, recomputed in fp32).
CERTIFY_MAX_MARGIN = 0.1
# A ball source whose whole batch of samples takes at most this many bytes keeps the chunks it
# drew in pass 1 for pass 2 instead of drawing them again (a fixed budget: memory stays bounded
# whatever N; at the paper's B=100, d=8 in float32 this covers N up to about 10,000).
SAMPLE_CACHE_BYTES = 32 * 2**20


class Kernel(str, enum.Enum):
    """How pass 1 computes the samples' CE (a setting: robust_kernel)."""

    CHUNKED = "chunked"   # torch, chunk by chunk (every device)
    FUSED = "fused"       # one Triton kernel over the ball samples (CUDA)


class SampleSource(Protocol):
    """Samples of a batch, in chunks along the sample axis; chunk(c) is the same on every call."""

    n_chunks: int

    def chunk(self, c: int) -> Tensor:
        """(B, m_c, d): samples m_c of every point; (k, B, m_c, d) for a pack of k trials."""
        ...

    def rows(self, c: int, idx: Tensor) -> Tensor:
        """(k, L, d): the rows idx (k, L) of chunk c as `_rows` lays them out (point-major), for
        each trial; the same values as gathering them from `chunk(c)`."""
        ...


@dataclass
class SmoothMaxStats:
    """What one call did; lets tests and benchmarks see the pruning at work."""

    samples: int = 0            # B * N (times k for a pack)
    backward_samples: int = 0   # rows that went through a backward (a pack pads to equal counts)
    full_chunks: int = 0        # chunks backpropagated whole
    gathered_chunks: int = 0    # chunks whose weighted samples were gathered
    skipped_chunks: int = 0     # chunks with no sample above the threshold
    selected_samples: int = 0   # samples kept (weight >= threshold), or candidates when certified
    certified: bool = False     # pass 1 ran on tensor cores with the certificate
    candidate_samples: int = 0  # rows the certified path recomputed in fp32 (padding included)


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
        self._offsets = self.offsets = _offsets(n, x.shape[-2], chunk_size)
        self.n_chunks = len(self._offsets) - 1
        total_bytes = x.numel() * n * x.element_size()
        self._cache: dict[int, Tensor] | None = {} if total_bytes <= SAMPLE_CACHE_BYTES else None

    def chunk(self, c: int) -> Tensor:
        if self._cache is not None and c in self._cache:
            return self._cache[c]
        lo, hi = self._offsets[c], self._offsets[c + 1]
        samples = uniform_ball(self.x, self.radius, self.keys, lo, hi - lo, self.n)
        if self._cache is not None:
            self._cache[c] = samples
        return samples

    def rows(self, c: int, idx: Tensor) -> Tensor:
        if self._cache is not None and c in self._cache:
            return _gather_rows(_as_pack(self._cache[c], self.packed), idx)
        lo, hi = self._offsets[c], self._offsets[c + 1]
        x = _as_pack(self.x, self.packed)
        return uniform_ball_at(x, self.radius, self.keys, idx // (hi - lo), lo + idx % (hi - lo),
                               self.n)


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

    def rows(self, c: int, idx: Tensor) -> Tensor:
        return _gather_rows(_as_pack(self.chunk(c), self.samples.dim() == 4), idx)


def _gather_rows(chunk: Tensor, idx: Tensor) -> Tensor:
    """Rows idx (k, L) of a (k, B, m, d) chunk laid out point-major: (k, L, d)."""
    k, b, m, d = chunk.shape
    return chunk.reshape(k, b * m, d).gather(1, idx.unsqueeze(-1).expand(-1, -1, d))


def uniform_ball_source(x: Tensor, radius: float, n: int, chunk_size: int,
                        seed: int | Sequence[int]) -> SampleSource:
    """n points uniform in the L-inf ball of `radius` around each row of x, in chunks of about
    chunk_size samples. `seed` is the stream's 64-bit key (trainers.rng.stream_key): sample j of
    point i is a pure function of (seed, i, j), so a chunk is regenerated in the backward pass
    instead of stored (unless all B*N samples fit `SAMPLE_CACHE_BYTES`), and the samples are the
    same for any chunk_size, pack and device. For a pack, x is (k, B, d) with one seed per trial
    (chunk_size then counts the samples of one trial)."""
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

    def __init__(self, model: nn.Module, packed: bool, z: Tensor) -> None:
        self.model, self.packed = model, packed
        k = z.shape[0]
        cuda = z.device.type == "cuda"
        self.rows = None if cuda else max(1, CPU_BLOCK_ROWS // k)
        self.layers = None if cuda else _stacked_layers(model, packed)
        self.buffers = [torch.empty(k * (self.rows or 0) * w.shape[1], device=z.device,
                                    dtype=z.dtype) for w, _ in self.layers or []]

    def __call__(self, z: Tensor, y: Tensor, out: Tensor) -> None:
        """CE of the rows z (k, R, d) with labels y (k, R) into out (k, R)."""
        step = self.rows or z.shape[1]
        for r0 in range(0, z.shape[1], step):
            block = z[:, r0:r0 + step]
            logits = self._fused(block) if self.layers else _logits(self.model, block, self.packed)
            out[:, r0:r0 + step] = _ce(logits.to(out.dtype), y[:, r0:r0 + step])

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
class _Scores:
    ce: list[Tensor]          # per chunk, (k, B, m_c): the CE (tensor-core values when err is set)
    err: list[Tensor] | None  # per chunk, (k, B, m_c): the certificate's bound on |ce - CE_fp32|


def _score_pass(model: nn.Module, source: SampleSource, y: Tensor, packed: bool) -> _Scores:
    """Pass 1 in torch, without autograd: the fp32 CE of every sample, chunk by chunk."""
    ce_chunks: list[Tensor] = []
    exact: _Forward | None = None
    with torch.no_grad():
        for c in range(source.n_chunks):
            chunk = _as_pack(source.chunk(c), packed)
            z, yr = _rows(chunk, y)
            ce = torch.empty(yr.shape, device=z.device, dtype=z.dtype)
            exact = exact or _Forward(model, packed, z)
            exact(z, yr, ce)
            ce_chunks.append(ce.view(chunk.shape[:3]))
    return _Scores(ce_chunks, None)


def _fused_pass(model: nn.Module, source: SampleSource, y: Tensor, packed: bool,
                precision: Precision) -> _Scores:
    """Pass 1 as one kernel (trainers.kernels.fused_ce): samples drawn in it, no activation
    stored; the CE (and err, on tensor cores) of every sample, viewed as the source's chunks."""
    layers = _stacked_layers(model, packed)
    if not isinstance(source, _BallSource) or layers is None:
        raise FusedUnavailable("the fused robust kernel needs ball samples and the MLP "
                               f"(got {type(source).__name__}, {type(model).__name__})")
    with torch.no_grad():
        out = fused_scores(layers, _as_pack(source.x, packed), y, source.keys, source.radius,
                           source.n, precision)
    offs = source.offsets

    def chunks(t: Tensor) -> list[Tensor]:
        return [t[..., offs[c]:offs[c + 1]] for c in range(source.n_chunks)]

    return _Scores(chunks(out.ce), None if out.err is None else chunks(out.err))


def _logsumexp_chunks(ce: list[Tensor], temperature: float) -> Tensor:
    """lse (k, B) = logsumexp over every chunk's samples of CE / T."""
    return torch.logsumexp(torch.stack([torch.logsumexp(c / temperature, -1) for c in ce], -1), -1)


def _to_host(counts: Tensor) -> list[list[int]]:
    """The one point of a step where the host waits on the device: it reads how many samples
    each chunk selected (per trial), which fixes the shapes of the rest of the step."""
    out: list[list[int]] = counts.tolist()
    return out


@dataclass
class _Pick:
    """What a chunk contributes after the selection: nothing, all rows, or the selected rows of
    each trial (idx (k, width), padded with unselected rows that valid (k, width) marks)."""

    kind: str                   # "skip", "full" or "gather"
    idx: Tensor | None = None
    valid: Tensor | None = None


def _select(masks: list[Tensor], stats: SmoothMaxStats) -> list[_Pick]:
    """Rows to process for each chunk's selection mask (k, B, m_c), from one read of the counts;
    the indices are built on the device (a stable sort puts each trial's selected rows first)."""
    flat = [m.flatten(1) for m in masks]
    counts = torch.stack([f.sum(1) for f in flat])            # (chunks, k)
    host = _to_host(counts)
    stats.selected_samples += sum(map(sum, host))
    picks: list[_Pick] = []
    for f, n, dev_counts in zip(flat, host, counts, strict=True):
        if sum(n) == 0:
            picks.append(_Pick("skip"))
        elif sum(n) > FULL_CHUNK_FRACTION * f.numel():
            picks.append(_Pick("full"))
        else:
            width = max(n)
            order = torch.sort(f.to(torch.uint8), dim=1, descending=True, stable=True).indices
            valid = torch.arange(width, device=f.device) < dev_counts.unsqueeze(1)
            picks.append(_Pick("gather", order[:, :width].clone(), valid))  # frees the rest
    return picks


def _picked_rows(source: SampleSource, c: int, shape: torch.Size, y: Tensor,
                 idx: Tensor) -> tuple[Tensor, Tensor]:
    """The picked rows idx (k, L) of chunk c (of (k, B, m) samples) and their labels, drawn by
    (point, sample) alone: the chunk itself is not regenerated."""
    return source.rows(c, idx), y.gather(1, idx // shape[-1])


def _chunk_rows(source: SampleSource, c: int, shape: torch.Size, y: Tensor,
                packed: bool) -> tuple[Tensor, Tensor]:
    chunk = _as_pack(source.chunk(c), packed)
    if chunk.shape[:3] != shape:
        raise RuntimeError(f"sample source chunk {c} changed shape between passes: "
                           f"{tuple(shape)} then {tuple(chunk.shape[:3])}")
    return _rows(chunk, y)


def _refine_pass(model: nn.Module, source: SampleSource, y: Tensor, scores: _Scores,
                 picks: list[_Pick], packed: bool, stats: SmoothMaxStats) -> list[Tensor]:
    """Certified scores, pass 2 without autograd: the fp32 CE of the candidates; every other sample
    gets -inf (weight exactly 0: its true weight is below the threshold, see the bound)."""
    exact: _Forward | None = None
    out: list[Tensor] = []
    with torch.no_grad():
        for c, (ce, pick) in enumerate(zip(scores.ce, picks, strict=True)):
            dense = torch.full_like(ce, -math.inf)
            if pick.kind == "full":
                z, yr = _chunk_rows(source, c, ce.shape, y, packed)
                exact = exact or _Forward(model, packed, z)
                exact(z, yr, dense.view(yr.shape))
                stats.candidate_samples += yr.numel()
            elif pick.kind == "gather":
                assert pick.idx is not None and pick.valid is not None
                zs, ys = _picked_rows(source, c, ce.shape, y, pick.idx)
                exact = exact or _Forward(model, packed, zs)
                vals = torch.empty(ys.shape, device=zs.device, dtype=zs.dtype)
                exact(zs, ys, vals)
                stats.candidate_samples += ys.numel()
                dense.flatten(1).scatter_(1, pick.idx, vals.masked_fill_(~pick.valid, -math.inf))
            out.append(dense)
    return out


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


def _weighted_pass(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
                   ce_chunks: list[Tensor], lse: Tensor, picks: list[_Pick], threshold: float,
                   packed: bool, stats: SmoothMaxStats) -> None:
    """With autograd: backward of sum w * CE over the picked rows of the chunks that hold any
    (only those are regenerated); gathered rows whose weight is below the threshold get w = 0."""
    batch = y.shape[1]
    on_cpu = lse.device.type == "cpu"
    rows = max(1, CPU_BACKWARD_ROWS // y.shape[0]) if on_cpu else max(c[0].numel()
                                                                       for c in ce_chunks)
    back = _Backward(model, packed, rows, stats)
    with torch.enable_grad():
        for c, (ce, pick) in enumerate(zip(ce_chunks, picks, strict=True)):
            if pick.kind == "skip":
                stats.skipped_chunks += 1
                continue
            p = torch.exp(ce / temperature - lse.unsqueeze(-1)).flatten(1)
            if pick.kind == "full":
                stats.full_chunks += 1
                back.run(*_chunk_rows(source, c, ce.shape, y, packed), p / batch)
            else:
                assert pick.idx is not None and pick.valid is not None
                stats.gathered_chunks += 1
                ps = p.gather(1, pick.idx)
                w = torch.where(pick.valid & (ps >= threshold), ps / batch, 0.0)
                back.add(*_picked_rows(source, c, ce.shape, y, pick.idx), w)
        back.flush()


def _as_pack(t: Tensor, packed: bool) -> Tensor:
    return t if packed else t.unsqueeze(0)


def smoothed_max_ce_backward(model: nn.Module, source: SampleSource, y: Tensor,
                             temperature: float, *, threshold: float = 1e-13,
                             kernel: Kernel = Kernel.CHUNKED,
                             precision: Precision = Precision.IEEE,
                             stats: SmoothMaxStats | None = None) -> Tensor:
    """Loss mean_i T * logsumexp_j(CE(z_ij, y_i) / T), detached; its gradient is ADDED to the
    parameters' .grad (the caller zeroes them), computed chunk by chunk so memory does not grow
    with N. y (B,) gives a scalar; y (k, B) (a pack, model mapping (k, R, d) -> (k, R, C)) gives
    the (k,) losses of the trials, and the gradient of their sum.

    threshold: samples with softmax weight p_ij < threshold get no backward (0 disables
    pruning; the value is always exact); the bound on the gradient error is in docs/NUMERICS.md.

    The host waits on the device once per call (`_to_host`: the per-chunk counts of the selected
    samples); everything else is queued.

    kernel: pass 1 in torch chunk by chunk (`chunked`) or as one fused kernel over the ball samples
    (`fused`). precision: the fused kernel's layer-2/3 products; with a tensor-core precision only
    the samples its certificate cannot rule out are recomputed in fp32 (why the kept set is then
    the fp32 path's: docs/NUMERICS.md). Certified only where it can pay
    (margin <= CERTIFY_MAX_MARGIN); at larger T the fused kernel runs in fp32.
    stats: filled with what was done (counts of samples, kept samples, chunk kinds).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if source.n_chunks < 1:
        raise ValueError("sample source has no chunks")
    packed = y.dim() == 2
    y = _as_pack(y, packed)
    stats = stats if stats is not None else SmoothMaxStats()
    margin = prune_margin(temperature, threshold)
    if kernel is Kernel.FUSED:
        certify = precision.certified and margin <= CERTIFY_MAX_MARGIN
        scores = _fused_pass(model, source, y, packed, precision if certify else Precision.IEEE)
    else:
        scores = _score_pass(model, source, y, packed)
    stats.samples += sum(c.numel() for c in scores.ce)
    if scores.err is None:
        ce, lse = scores.ce, _logsumexp_chunks(scores.ce, temperature)
        picks = _select([torch.exp(c / temperature - lse.unsqueeze(-1)) >= threshold
                         for c in ce], stats)
    else:
        stats.certified = True
        lower = torch.stack([(c - e).amax(-1) for c, e in zip(scores.ce, scores.err,
                                                                strict=True)], -1).amax(-1)
        picks = _select([c + e >= (lower - margin).unsqueeze(-1)
                         for c, e in zip(scores.ce, scores.err, strict=True)], stats)
        ce = _refine_pass(model, source, y, scores, picks, packed, stats)
        lse = _logsumexp_chunks(ce, temperature)
    _weighted_pass(model, source, y, temperature, ce, lse, picks, threshold, packed, stats)
    loss = (temperature * lse).mean(-1)
    return loss if packed else loss[0]
