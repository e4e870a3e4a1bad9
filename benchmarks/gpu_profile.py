"""The robust step's pass-1 kernels side by side on a trained model: seconds per step, achieved
FLOP/s against the device's peaks, kept fraction, gradient against the chunked fp32 pass.

Usage: python benchmarks/gpu_profile.py [--device cuda] [--eps 0.1 0.2 0.25 0.3] [--temps 1 1e-4]
       [--variants chunked fused-ieee fused-tf32x3 fused-bf16x3 reference]
       [--calibration-out FILE [--calibration-variant chunked]] [--json]

Variants, each one robust step of B=100 Avila training points (loss and gradient, no update):
- chunked: today's torch pass chunk by chunk (`robust_kernel = "chunked"`);
- fused-ieee / fused-tf32x3 / fused-bf16x3: pass 1 as one Triton kernel (`robust_kernel =
  "fused"`, `robust_precision`), the certified precisions recomputing their candidates in fp32;
- reference: what a naive implementation does, every sample and activation in one autograd
  graph with a full backward (skipped where it does not fit in memory).
The model is pre-trained with plain CE (`robust_step.pretrain`), so the kept fractions at low T
are those of a model that has learnt. The variants of a cell run interleaved, round by round
(the machine may be shared), and the minimum over rounds is reported, with the device named.

FLOPs are counted, not measured: a forward of the d->h->h->c MLP is F = 2(dh + h^2 + hc) per
sample; pass 1 does F per sample (a certified precision 3F in its products, counted as F of
useful work), the recompute F per candidate, the backward 3F per backpropagated row.

--calibration-out writes a calibration (cluster.calibration) with one robust rate per radius for
--calibration-variant: seconds per step over a paper trial, the annealing steps included (the
first temp_steps steps at the mean of the T=1 and T=1e-4 times, the rest at T=1e-4).
On the CPU the fused variants are skipped, and said so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.robust_step import (
    BATCH,
    SAMPLE_SEED,
    load_data,
    ours_step,
    pretrain,
    reference_fits,
    timed,
)
from benchmarks.robust_step import reference_step as one_graph_step
from cluster import calibration
from cluster.calibration import Rate
from cluster.cost import forward_flops, steps_of
from trainers.device import device_model, pin_precision
from trainers.kernels import fused_ce
from trainers.kernels.certificate import Precision
from trainers.smoothmax import Kernel, SmoothMaxStats, uniform_ball_source
from trainers.spec import Method, TrainSettings, TrainSpec, n_ball_samples

# dense (no sparsity) peaks in TFLOP/s from the vendors' data sheets: fp32, tf32, bf16
PEAKS = {"H200": (66.9, 494.7, 989.0), "H100": (66.9, 494.7, 989.0),
         "A100": (19.5, 156.0, 312.0)}
VARIANTS = ("chunked", "fused-ieee", "fused-tf32x3", "fused-bf16x3", "reference")


def peaks_for(name: str) -> dict[str, float] | None:
    for word, (fp32, tf32, bf16) in PEAKS.items():
        if word in name:
            return {"fp32": fp32, "tf32": tf32, "bf16": bf16}
    return None


def variant_kernel(variant: str) -> tuple[Kernel, Precision]:
    if variant == "chunked":
        return Kernel.CHUNKED, Precision.IEEE
    return Kernel.FUSED, Precision(variant.removeprefix("fused-"))


def step_flops(stats: SmoothMaxStats, f: float) -> float:
    return (stats.samples + stats.candidate_samples) * f + stats.backward_samples * 3.0 * f


def run_variant(variant: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                eps: float, temp: float, chunk: int) -> SmoothMaxStats:
    """One robust step's loss and gradient (left in .grad) by `variant`."""
    n = n_ball_samples(eps)
    source = uniform_ball_source(x, eps, n, chunk, SAMPLE_SEED)
    if variant == "reference":
        samples = torch.cat([source.chunk(c) for c in range(source.n_chunks)], 1)
        one_graph_step(model, samples, y, temp)
        return SmoothMaxStats(samples=BATCH * n, backward_samples=BATCH * n)
    return ours_step(model, x, y, eps, temp, chunk, *variant_kernel(variant))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--eps", type=float, nargs="+", default=[0.1, 0.2, 0.25, 0.3])
    p.add_argument("--temps", type=float, nargs="+", default=[1.0, 1e-4])
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per cell (default 3)")
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--chunk-size", type=int,
                   help="samples per chunk (default: what training uses on the device)")
    p.add_argument("--data-dir", default=os.environ.get("DROSWEEP_DATA_DIR"))
    p.add_argument("--calibration-out", type=Path, help="write the robust rates here")
    p.add_argument("--calibration-variant", choices=VARIANTS[:4], default="chunked")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    chunk = args.chunk_size or TrainSettings().chunk_for(device.type)
    precision = pin_precision()
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else print
    name = device_model(device)
    skipped: list[str] = []
    variants = list(args.variants)
    why = fused_ce.availability(device)
    if why is not None:
        skipped += [f"{v} ({why})" for v in variants if v.startswith("fused")]
        variants = [v for v in variants if not v.startswith("fused")]
    if args.calibration_out and args.calibration_variant not in variants:
        p.error(f"--calibration-variant {args.calibration_variant} does not run here")
    data, dataset = load_data(args.data_dir)
    pick = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(0))[:BATCH]
    x, y = data.x_train[pick].to(device), data.y_train[pick].to(device)
    t0 = time.perf_counter()
    model = pretrain(data, args.pretrain_epochs, 0).to(device)
    with torch.no_grad():
        acc = float((model(data.x_test.to(device)).argmax(1) == data.y_test.to(device))
                    .float().mean())
    log(f"device {name}; torch {torch.__version__}; triton "
        f"{getattr(fused_ce.triton, '__version__', None)}; pre-trained {args.pretrain_epochs} "
        f"epochs in {time.perf_counter() - t0:.1f} s (test accuracy {acc:.3f})")
    f = forward_flops(model.layer2.weight.shape[0], x.shape[-1], model.layer3.weight.shape[0])
    peaks = peaks_for(name)
    rows: list[dict[str, Any]] = []
    for eps in args.eps:
        n = n_ball_samples(eps)
        for temp in args.temps:
            cell = [v for v in variants
                    if v != "reference" or reference_fits(BATCH * n, 200, device) is None]
            if "reference" in variants and "reference" not in cell:
                skipped.append(f"reference eps={eps:g} ({reference_fits(BATCH * n, 200, device)})")
            times: dict[str, list[float]] = {v: [] for v in cell}
            stats: dict[str, SmoothMaxStats] = {}
            grads: dict[str, list[torch.Tensor]] = {}
            for r in range(args.repeats + 1):  # round 0 warms up (compiles the kernels)
                order = cell if r % 2 == 0 else cell[::-1]
                for v in order:
                    model.zero_grad(set_to_none=True)
                    seconds, got = timed(partial(run_variant, v, model, x, y, eps, temp, chunk),
                                         device)
                    assert isinstance(got, SmoothMaxStats)
                    if r > 0:
                        times[v].append(seconds)
                    stats[v] = got
                    grads[v] = [q.grad.detach().clone() for q in model.parameters()
                                if q.grad is not None]
            base = grads.get("chunked")
            for v in cell:
                best, st = min(times[v]), stats[v]
                tflops = step_flops(st, f) / best / 1e12
                row: dict[str, Any] = {
                    "variant": v, "eps": eps, "T": temp, "n": n, "seconds": best,
                    "seconds_all": times[v], "tflops": tflops,
                    "kept_fraction": st.selected_samples / st.samples if st.samples else None,
                    "candidate_fraction": st.candidate_samples / st.samples if st.samples else None,
                    "certified": st.certified,
                    "grad_rel_diff_vs_chunked": None if base is None else max(
                        float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
                        for a, b in zip(grads[v], base, strict=True))}
                if peaks:
                    row["pct_fp32_peak"] = 100 * tflops / peaks["fp32"]
                    tc = {"fused-tf32x3": "tf32", "fused-bf16x3": "bf16"}.get(v)
                    row["pct_tensor_core_peak"] = 100 * tflops / peaks[tc] if tc else None
                rows.append(row)
                kept = row["kept_fraction"]
                log(f"eps={eps:<5g} T={temp:<7g} {v:13} {best * 1e3:9.2f} ms  "
                    f"{tflops:7.2f} TFLOP/s"
                    + (f" ({row['pct_fp32_peak']:.0f}% fp32 peak)" if peaks else "")
                    + (f"  kept {100 * kept:.3g}%" if kept is not None and v != "reference" else "")
                    + (f"  recomputed {100 * row['candidate_fraction']:.3g}%" if st.certified else "")
                    + (f"  grad vs chunked {row['grad_rel_diff_vs_chunked']:.1e}"
                       if row["grad_rel_diff_vs_chunked"] is not None and v != "chunked" else ""))
    for line in skipped:
        log(f"skipped: {line}")
    out: dict[str, Any] = {"device": name, "torch": torch.__version__,
                           "triton": getattr(fused_ce.triton, "__version__", None),
                           "cuda": torch.version.cuda, "precision": precision, "data": dataset,
                           "batch": BATCH, "test_accuracy": acc, "peak_tflops": peaks,
                           "rows": rows, "skipped": skipped}
    if args.calibration_out:
        rates = calibration_rates(rows, args.calibration_variant)
        calibration.save(args.calibration_out, name, rates,
                         created=datetime.now(UTC).isoformat(timespec="seconds"),
                         versions={"torch": str(torch.__version__),
                                   "cuda": str(torch.version.cuda)})
        log(f"calibration: {len(rates)} robust rates ({args.calibration_variant}) written to "
            f"{args.calibration_out}")
        out["calibration"] = str(args.calibration_out)
    if args.json:
        print(json.dumps(out))
    return 0


def calibration_rates(rows: list[dict[str, Any]], variant: str) -> list[Rate]:
    """One robust rate per radius measured at T=1 and at the lowest T: the paper trial's mean
    seconds per step, its first temp_steps steps (the annealing) at the mean of the two."""
    rates = []
    for eps in sorted({r["eps"] for r in rows}):
        mine = {r["T"]: r["seconds"] for r in rows if r["eps"] == eps and r["variant"] == variant}
        if 1.0 not in mine or len(mine) < 2:
            continue
        low = mine[min(mine)]
        total = steps_of(TrainSpec(Method.ROBUST, eps, 0))
        anneal = min(TrainSettings().temp_steps, total)
        mean = (anneal * (mine[1.0] + low) / 2 + (total - anneal) * low) / total
        rates.append(Rate(Method.ROBUST, eps, 1, mean,
                          f"{variant}; T=1: {mine[1.0]:.4g} s, T={min(mine):g}: {low:.4g} s, "
                          f"{anneal} of {total} steps annealing; B={BATCH}, trained model"))
    return rates


if __name__ == "__main__":
    sys.exit(main())
