"""One robust step at the paper's largest radius, profiled: time, achieved FLOP/s against the
device's dense peaks, host waits per step and peak device memory, exact fp32 and with the bf16
preselection side by side.

Usage: python benchmarks/gpu_profile.py [--device cuda] [--eps 0.3 0.1] [--json]

Two states, B=100 Avila training points: T=1 on a fresh model (nothing is pruned: every one of
the B*N samples goes through forward and backward) and T=1e-4 on a model pre-trained with plain CE
(`robust_step.pretrain`, so pruning is as in a real run). FLOPs are counted, not measured: a
forward of the d->h->h->c MLP is F = 2(dh + h^2 + hc) per sample; a step does F for every sample
in pass 1 and about 3F (forward and backward) for every sample that is backpropagated. Sampling,
CE and log-sum-exp are not counted, so the FLOP/s is a lower bound on the work done.
Host waits are counted with torch.cuda.set_sync_debug_mode("warn") (CUDA only); the time is the
minimum over repeats after one warm-up step, with the device synchronised around each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.robust_step import BATCH, load_data, ours_step, pretrain
from cluster.cost import forward_flops
from trainers.device import device_model, pin_precision
from trainers.model import build_model
from trainers.smoothmax import SmoothMaxStats
from trainers.spec import TrainSettings, n_ball_samples

# dense (no sparsity) peaks in TFLOP/s from the vendors' data sheets, by a word of the name
PEAKS = {"H200": (66.9, 989.0), "H100": (66.9, 989.0), "A100": (19.5, 312.0)}


def peaks_for(name: str) -> tuple[float | None, float | None]:
    for word, peak in PEAKS.items():
        if word in name:
            return peak
    return None, None


def step_flops(stats: SmoothMaxStats, d: int, h: int, c: int) -> float:
    f = forward_flops(h, d, c)
    return stats.samples * f + stats.backward_samples * 3.0 * f


def profile(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, temp: float,
            preselect: bool, repeats: int, chunk: int,
            device: torch.device) -> tuple[dict[str, Any], list[torch.Tensor]]:
    times: list[float] = []
    waits = 0
    stats = SmoothMaxStats()
    for r in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                stats = ours_step(model, x, y, eps, temp, chunk, preselect=preselect)
            finally:
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if r > 0:
            times.append(time.perf_counter() - t0)
            waits = sum("synchroniz" in str(w.message) for w in caught)
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    hidden = TrainSettings().hidden
    classes = list(model.parameters())[-1].shape[0]  # the last layer's bias
    flops = step_flops(stats, x.shape[-1], hidden, classes)
    best = min(times)
    return {"eps": eps, "T": temp, "preselect": preselect, "n": n_ball_samples(eps),
            "seconds": best, "seconds_all": times, "tflops": flops / best / 1e12,
            "samples": stats.samples, "backward_samples": stats.backward_samples,
            "candidate_samples": stats.candidate_samples, "preselected": stats.preselected,
            "host_waits_per_step": waits if device.type == "cuda" else None,
            "peak_mem_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                             if device.type == "cuda" else None)}, grads


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--eps", type=float, nargs="+", default=[0.3])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--chunk-size", type=int,
                   help="samples per chunk (default: what training uses on the device)")
    p.add_argument("--data-dir", default=os.environ.get("DROSWEEP_DATA_DIR"))
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.chunk_size is None:
        args.chunk_size = TrainSettings().chunk_for(device.type)
    precision = pin_precision()
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else print
    data, dataset = load_data(args.data_dir)
    pick = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(0))[:BATCH]
    x, y = data.x_train[pick].to(device), data.y_train[pick].to(device)
    t0 = time.perf_counter()
    trained = pretrain(data, args.pretrain_epochs, 0).to(device)
    log(f"pre-trained {args.pretrain_epochs} epochs on the CPU in {time.perf_counter() - t0:.1f} s")
    fresh = build_model(seed=0).to(device)
    name = device_model(device)
    fp32_peak, bf16_peak = peaks_for(name)
    rows = []
    for eps in args.eps:
        for state, model, temp in (("T1", fresh, 1.0), ("T1e-4", trained, 1e-4)):
            exact, exact_grads = profile(model, x, y, eps, temp, False, args.repeats,
                                         args.chunk_size, device)
            pre, pre_grads = profile(model, x, y, eps, temp, True, args.repeats,
                                     args.chunk_size, device)
            diff = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
                       for a, b in zip(pre_grads, exact_grads, strict=True))
            pre["grad_rel_diff_vs_exact"] = diff
            for row in (exact, pre):
                row["state"] = state
                if fp32_peak:
                    row["fraction_of_fp32_peak"] = row["tflops"] / fp32_peak
                rows.append(row)
                log(f"eps={eps:g} {state:6} {'preselect' if row['preselect'] else 'exact':9} "
                    f"{row['seconds']:.4f} s  {row['tflops']:.1f} TFLOP/s  "
                    f"waits {row['host_waits_per_step']}  peak {row['peak_mem_gib']} GiB  "
                    f"backward rows {row['backward_samples']:,}/{row['samples']:,}")
            log(f"  preselect speedup {exact['seconds'] / pre['seconds']:.2f}x, gradient rel diff "
                f"{diff:.2e}")
    out = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda,
           "precision": precision, "data": dataset, "batch": BATCH,
           "peak_tflops": {"fp32": fp32_peak, "bf16": bf16_peak}, "rows": rows}
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
