"""Pass 1 of the robust step as one Triton kernel: ball samples drawn in the kernel, three layers,
cross-entropy, and (on tensor cores) the certificate's bound, with no activation leaving the chip.

Why: the chunked torch pass writes every chunk's activations to memory and launches separate
GEMM, ReLU and RNG kernels; at eps = 0.3 that is ~155 GB of traffic per step. Here a program
owns BLOCK_M samples of one point of one trial and writes only their CE (and err): 4-8 bytes a
sample. The samples are those of `trainers.rng` bit for bit (splitmix64 on uint64; the sample
arithmetic is compiled without FMA contraction, so (2u - 1) * r + x rounds as torch's does).

The hidden width need not be a power of two: it is padded to three power-of-two segments
(200 -> 128 + 64 + 16), the padding's weights are zero, and layer 2 is nine block products.
On the CPU the kernel runs under TRITON_INTERPRET=1 (tests); training on the CPU keeps the
torch path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from trainers.kernels.certificate import Certificate, Precision, nonneg_dot_inflation

try:  # triton ships with CUDA builds of torch; the CPU build needs the test extra
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is absent
    triton = None
    tl = None

BLOCK_M = 64
# triton reads this when a kernel is defined (at this import): a later change does not apply
_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


class FusedUnavailable(RuntimeError):
    """The fused kernel cannot run here (no triton, or a CPU tensor outside the interpreter)."""


def interpreted() -> bool:
    """Whether the kernel runs under Triton's interpreter (on CPU tensors)."""
    return _INTERPRETED


def availability(device: torch.device) -> str | None:
    """None when the kernel can run on `device`, else the reason in one line."""
    if triton is None:
        return "the fused robust kernel needs triton (it ships with CUDA builds of torch)"
    if device.type == "cpu" and not interpreted():
        return ("the fused robust kernel runs on CUDA (on the CPU only under TRITON_INTERPRET=1, "
                "for tests); use robust_kernel = 'chunked' or 'auto' on the CPU")
    if device.type not in ("cpu", "cuda"):
        return f"the fused robust kernel runs on CUDA, not on {device.type}"
    return None


def segments(hidden: int) -> tuple[int, int, int]:
    """Three powers of two >= 16 whose sum is the smallest such sum >= hidden (Triton's blocks
    are powers of two; three segments waste at most a few columns, where one would pad 200 to
    256)."""
    pads = 16 * -(-hidden // 16)
    while True:
        for a in (2 ** e for e in range(4, 13)):
            for b in (2 ** e for e in range(4, 13)):
                c = pads - a - b
                if c >= 16 and c & (c - 1) == 0 and a >= b >= c:
                    return a, b, c
        pads += 16


def padded_classes(classes: int) -> int:
    return max(16, 1 << (classes - 1).bit_length())


@dataclass(frozen=True)
class PackedWeights:
    """The pack's weights laid out for the kernel (transposed, zero-padded), and the
    certificate's matrices padded the same way."""

    w1: Tensor   # (k, d, HP)
    b1: Tensor   # (k, HP)
    w2: Tensor   # (k, HP, HP): [in, out]
    b2: Tensor   # (k, HP)
    w3: Tensor   # (k, HP, CP)
    b3: Tensor   # (k, CP)
    m1: Tensor   # (k, d, CP)
    m2: Tensor   # (k, HP, CP)
    m3: Tensor   # (k, HP, CP)
    const: Tensor  # (k, CP)
    seg: tuple[int, int, int]
    classes: int
    a: tuple[float, float, float]

    @classmethod
    def build(cls, layers: list[tuple[Tensor, Tensor]], precision: Precision) -> PackedWeights:
        (w1, b1), (w2, b2), (w3, b3) = ((w.detach().float(), b.detach().float()) for w, b in layers)
        k, hidden, d = w1.shape
        classes = w3.shape[1]
        seg = segments(hidden)
        hp, cp = sum(seg), padded_classes(classes)

        def pad(t: Tensor, rows: int, cols: int) -> Tensor:
            out = t.new_zeros(k, rows, cols)
            out[:, :t.shape[1], :t.shape[2]] = t
            return out.contiguous()

        base = {"w1": pad(w1.transpose(1, 2), d, hp), "b1": pad(b1, 1, hp)[:, 0].contiguous(),
                "w2": pad(w2.transpose(1, 2), hp, hp), "b2": pad(b2, 1, hp)[:, 0].contiguous(),
                "w3": pad(w3.transpose(1, 2), hp, cp), "b3": pad(b3, 1, cp)[:, 0].contiguous()}
        if not precision.certified:  # fp32: no bound to compute (the kernel never reads one)
            empty = w1.new_zeros(1)
            return cls(**base, m1=empty, m2=empty, m3=empty, const=empty, seg=seg,
                       classes=classes, a=(0.0, 0.0, 0.0))
        cert = Certificate.build(layers, precision, nonneg_dot_inflation(hidden))
        return cls(**base, m1=pad(cert.m1, d, cp), m2=pad(cert.m2, hp, cp),
                   m3=pad(cert.m3, hp, cp), const=pad(cert.const, 1, cp)[:, 0].contiguous(),
                   seg=seg, classes=classes, a=(cert.a1, cert.a2, cert.a3))


if triton is not None:

    @triton.jit
    def _draw(key, counter):
        """splitmix64 of key + counter * G: trainers.rng's value at that counter."""
        v = key + counter * 0x9E3779B97F4A7C15
        v = v ^ (v >> 30)
        v = v * 0xBF58476D1CE4E5B9
        v = v ^ (v >> 27)
        v = v * 0x94D049BB133111EB
        return v ^ (v >> 31)

    @triton.jit
    def _coord(bits, shift: tl.constexpr, x, radius):
        """One coordinate of a sample: x + (2u - 1) r, each operation rounded as torch's."""
        u = ((bits >> shift) & 0xFFFFFF).to(tl.float32) * (2.0 ** -24)
        return ((u * 2.0) - 1.0) * radius + x

    @triton.jit
    def _round(a, PREC: tl.constexpr):
        """a rounded to the split's format, kept in fp32 (exact there): bf16 to nearest even,
        tf32 to nearest with ties away (as cvt.rna.tf32.f32), by bit operations, so the
        interpreter rounds as the GPU does."""
        bits = a.to(tl.uint32, bitcast=True)
        if PREC == "bf16x3":  # noqa: SIM108 (a constexpr branch of a Triton kernel)
            bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        else:
            bits = (bits + 0x1000) & 0xFFFFE000
        return bits.to(tl.float32, bitcast=True)

    @triton.jit
    def _tc(a, b, acc, PREC: tl.constexpr, INTERP: tl.constexpr):
        """acc + a @ b for operands already exact in the split's format: on tensor cores, or in
        fp32 under the interpreter (its bf16 dot is not emulated; the products are exact either
        way, only the accumulation order differs)."""
        if INTERP:
            return tl.dot(a, b, acc, input_precision="ieee")
        elif PREC == "bf16x3":
            return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), acc, out_dtype=tl.float32)
        else:
            return tl.dot(a, b, acc, input_precision="tf32")

    @triton.jit
    def _block(ptr, row0: tl.constexpr, col0: tl.constexpr, ROWS: tl.constexpr,
               COLS: tl.constexpr, STRIDE: tl.constexpr):
        r = row0 + tl.arange(0, ROWS)
        c = col0 + tl.arange(0, COLS)
        return tl.load(ptr + r[:, None] * STRIDE + c[None, :])

    @triton.jit
    def _row(ptr, col0: tl.constexpr, COLS: tl.constexpr):
        return tl.load(ptr + col0 + tl.arange(0, COLS))

    @triton.jit
    def _prod(ha, hb, hc, w_ptr, col0: tl.constexpr, COLS: tl.constexpr, SA: tl.constexpr,
              SB: tl.constexpr, SC: tl.constexpr, STRIDE: tl.constexpr, PREC: tl.constexpr,
              INTERP: tl.constexpr):
        """Columns col0 .. col0 + COLS of h @ W, h given as its three segments, one accumulator.
        x3: the small products hi·lo + lo·hi of every segment first, then hi·hi, the order the
        certificate's bound assumes (trainers.kernels.certificate.split_product_error)."""
        wa = _block(w_ptr, 0, col0, SA, COLS, STRIDE)
        wb = _block(w_ptr, SA, col0, SB, COLS, STRIDE)
        wc = _block(w_ptr, SA + SB, col0, SC, COLS, STRIDE)
        acc = tl.zeros((ha.shape[0], COLS), tl.float32)
        if PREC == "ieee" or PREC == "tf32":
            acc = tl.dot(ha, wa, acc, input_precision=PREC)
            acc = tl.dot(hb, wb, acc, input_precision=PREC)
            acc = tl.dot(hc, wc, acc, input_precision=PREC)
        else:
            hah, hbh, hch = _round(ha, PREC), _round(hb, PREC), _round(hc, PREC)
            wah, wbh, wch = _round(wa, PREC), _round(wb, PREC), _round(wc, PREC)
            acc = _tc(hah, _round(wa - wah, PREC), acc, PREC, INTERP)
            acc = _tc(_round(ha - hah, PREC), wah, acc, PREC, INTERP)
            acc = _tc(hbh, _round(wb - wbh, PREC), acc, PREC, INTERP)
            acc = _tc(_round(hb - hbh, PREC), wbh, acc, PREC, INTERP)
            acc = _tc(hch, _round(wc - wch, PREC), acc, PREC, INTERP)
            acc = _tc(_round(hc - hch, PREC), wch, acc, PREC, INTERP)
            acc = _tc(hah, wah, acc, PREC, INTERP)
            acc = _tc(hbh, wbh, acc, PREC, INTERP)
            acc = _tc(hch, wch, acc, PREC, INTERP)
        return acc

    @triton.jit
    def _layer(ha, hb, hc, w_ptr, b_ptr, col0: tl.constexpr, COLS: tl.constexpr,
               SA: tl.constexpr, SB: tl.constexpr, SC: tl.constexpr, STRIDE: tl.constexpr,
               PREC: tl.constexpr, INTERP: tl.constexpr):
        """Columns col0 .. col0 + COLS of h @ W + b."""
        return (_prod(ha, hb, hc, w_ptr, col0, COLS, SA, SB, SC, STRIDE, PREC, INTERP)
                + _row(b_ptr, col0, COLS)[None, :])

    @triton.jit
    def _fused_ce_kernel(x_ptr, y_ptr, key_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr,
                         m1_ptr, m2_ptr, m3_ptr, const_ptr, ce_ptr, err_ptr, samples_ptr,
                         n, points, radius, a1, a2, a3,
                         D: tl.constexpr, SA: tl.constexpr, SB: tl.constexpr, SC: tl.constexpr,
                         C: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr,
                         PREC: tl.constexpr, WITH_ERR: tl.constexpr,
                         STORE_SAMPLES: tl.constexpr, INTERP: tl.constexpr):
        tile = tl.program_id(0)
        point = tl.program_id(1)
        trial = tl.program_id(2)
        HP: tl.constexpr = SA + SB + SC
        SLOTS: tl.constexpr = (D + 1) // 2
        j = tile * BLOCK + tl.arange(0, BLOCK)
        valid = j < n
        row = (trial * points + point).to(tl.int64)
        key = tl.load(key_ptr + trial).to(tl.uint64, bitcast=True)
        base = (point.to(tl.uint64) * n + j.to(tl.uint64)) * SLOTS
        w1 = w1_ptr + trial * D * HP
        b1 = b1_ptr + trial * HP
        h1a = tl.zeros((BLOCK, SA), tl.float32) + _row(b1, 0, SA)[None, :]
        h1b = tl.zeros((BLOCK, SB), tl.float32) + _row(b1, SA, SB)[None, :]
        h1c = tl.zeros((BLOCK, SC), tl.float32) + _row(b1, SA + SB, SC)[None, :]
        zb = tl.zeros((BLOCK, CP), tl.float32)  # |W3||W2||W1| |z|, the certificate's term
        for p in tl.static_range(SLOTS):
            bits = _draw(key, base + p)
            for half in tl.static_range(2):
                c: tl.constexpr = 2 * p + half
                if c < D:
                    xc = tl.load(x_ptr + row * D + c)
                    zc = _coord(bits, 40 - 24 * half, xc, radius)
                    if STORE_SAMPLES:
                        tl.store(samples_ptr + (row * n + j.to(tl.int64)) * D + c, zc,
                                 mask=valid)
                    h1a += zc[:, None] * _row(w1 + c * HP, 0, SA)[None, :]
                    h1b += zc[:, None] * _row(w1 + c * HP, SA, SB)[None, :]
                    h1c += zc[:, None] * _row(w1 + c * HP, SA + SB, SC)[None, :]
                    if WITH_ERR:
                        m1c = _row(m1_ptr + (trial * D + c) * CP, 0, CP)
                        zb += tl.abs(zc)[:, None] * m1c[None, :]
        h1a = tl.maximum(h1a, 0.0)
        h1b = tl.maximum(h1b, 0.0)
        h1c = tl.maximum(h1c, 0.0)
        w2 = w2_ptr + trial * HP * HP
        b2 = b2_ptr + trial * HP
        h2a = tl.maximum(_layer(h1a, h1b, h1c, w2, b2, 0, SA, SA, SB, SC, HP, PREC, INTERP), 0.0)
        h2b = tl.maximum(_layer(h1a, h1b, h1c, w2, b2, SA, SB, SA, SB, SC, HP, PREC, INTERP), 0.0)
        h2c = tl.maximum(_layer(h1a, h1b, h1c, w2, b2, SA + SB, SC, SA, SB, SC, HP, PREC, INTERP), 0.0)
        logits = _layer(h2a, h2b, h2c, w3_ptr + trial * HP * CP, b3_ptr + trial * CP, 0, CP,
                        SA, SB, SC, CP, PREC, INTERP)
        cls = tl.arange(0, CP)
        real = cls[None, :] < C
        logits = tl.where(real, logits, float("-inf"))
        top = tl.max(logits, 1)
        lse = top + tl.log(tl.sum(tl.exp(logits - top[:, None]), 1))
        label = tl.load(y_ptr + row)
        at_y = tl.sum(tl.where(cls[None, :] == label, logits, 0.0), 1)
        ce = lse - at_y
        out = row * n + j.to(tl.int64)
        tl.store(ce_ptr + out, ce, mask=valid)
        if WITH_ERR:
            # the certificate (trainers.kernels.certificate): Delta per class, then err
            m2 = m2_ptr + trial * HP * CP
            m3 = m3_ptr + trial * HP * CP
            s2 = _prod(h1a, h1b, h1c, m2, 0, CP, SA, SB, SC, CP, "tf32", INTERP)
            s3 = _prod(h2a, h2b, h2c, m3, 0, CP, SA, SB, SC, CP, "tf32", INTERP)
            cst = _row(const_ptr + trial * CP, 0, CP)[None, :]
            delta = a3 * s3 + a2 * s2 + a1 * zb + cst
            delta = tl.where(real, delta, 0.0)
            worst = tl.max(delta, 1)
            d_y = tl.sum(tl.where(cls[None, :] == label, delta, 0.0), 1)
            scale = tl.max(tl.where(real, tl.abs(logits), 0.0), 1)
            err = (worst + d_y) * (1 + 2.0 ** -10) + (scale + worst + 4) * (16 * 2.0 ** -24)
            tl.store(err_ptr + out, err, mask=valid)


@dataclass
class FusedScores:
    ce: Tensor                # (k, B, n)
    err: Tensor | None        # (k, B, n) for a certified precision
    samples: Tensor | None    # (k, B, n, d) when asked for (tests, doctor)


def fused_scores(layers: list[tuple[Tensor, Tensor]], x: Tensor, y: Tensor, keys: Tensor,
                 radius: float, n: int, precision: Precision = Precision.IEEE,
                 store_samples: bool = False, block: int = BLOCK_M) -> FusedScores:
    """Pass 1 of a pack: the CE of each of the n ball samples of every point of x (k, B, d)
    with labels y (k, B), drawn from keys (k,) as `uniform_ball_source` draws them; with a
    tensor-core precision also the certificate's err."""
    reason = availability(x.device)
    if reason is not None:
        raise FusedUnavailable(reason)
    k, b, d = x.shape
    if x.dtype != torch.float32:
        raise FusedUnavailable(f"the fused robust kernel computes in float32, got {x.dtype}")
    pw = PackedWeights.build(layers, precision)
    with_err = precision.certified
    ce = torch.empty(k, b, n, device=x.device, dtype=torch.float32)
    err = torch.empty_like(ce) if with_err else ce
    samples = (torch.empty(k, b, n, d, device=x.device, dtype=torch.float32)
               if store_samples else ce)
    grid = (triton.cdiv(n, block), b, k)
    extra: dict[str, Any] = {} if interpreted() else {"enable_fp_fusion": False}
    _fused_ce_kernel[grid](
        x.detach().contiguous(), y.contiguous(), keys.contiguous(), pw.w1, pw.b1, pw.w2, pw.b2,
        pw.w3, pw.b3, pw.m1, pw.m2, pw.m3, pw.const, ce, err, samples, n, b, float(radius),
        *pw.a, D=d, SA=pw.seg[0], SB=pw.seg[1], SC=pw.seg[2], C=pw.classes,
        CP=padded_classes(pw.classes), BLOCK=block, PREC=precision.value, WITH_ERR=with_err,
        STORE_SAMPLES=store_samples, INTERP=interpreted(), **extra)
    return FusedScores(ce, err if with_err else None, samples if store_samples else None)
