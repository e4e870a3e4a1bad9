"""Seconds per robust step: the chunked smoothed max against a naive one-graph reference.

Usage: python benchmarks/robust_step.py [--device cpu|cuda] [--data-dir DIR] [--repeats R] [--json]

A step is: draw B*N ball samples, the loss mean_i T*logsumexp_j(CE_ij/T) and its gradient (the SGD
update, ~0.1 ms, is left out so every repeat sees the same model). The reference puts all B*N
samples in one autograd graph; ours is `smoothed_max_ce_backward` (its chunked torch pass; the
fused kernel and its precisions are compared on a GPU by benchmarks/robust_kernels.py). Both use
the same samples (the reference concatenates the source's chunks), so their gradients are
compared as well.

Two states, B=100 Avila training points, eps in {0.01, 0.1, 0.2}:
- T=1, fresh model: every sample carries weight (no pruning; tests the chunked full backward);
- T=1e-4, model pre-trained here with plain CE (SGD lr 0.2, batch 100, seeded) for a fixed number
  of epochs: nearly all softmax mass sits on a few samples per point (tests the pruning).
Then the peak RSS of one of our steps at eps=0.3 (N=194,796), in a subprocess of its own.

Other processes may share the CPU: reference and ours are interleaved, and the minimum over
repeats is the figure used (the median is printed beside it). With OpenMP's default spin-waiting,
a descheduled thread stalls every parallel region, which slows both sides by up to 10x when the
cores are shared. Unless OMP_WAIT_POLICY is set, the script therefore picks ACTIVE on a quiet
machine (1-minute load average below 3/4 of the cores: the state the targets are stated for) and
PASSIVE on a busy one, re-executing itself (OpenMP reads it at load). The policy and the load
average at both ends are printed with the table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.data import DataError, Dataset, load_avila, make_synthetic
from trainers.kernels.certificate import Precision
from trainers.model import MLP, build_model
from trainers.smoothmax import Kernel, SmoothMaxStats, smoothed_max_ce_backward, uniform_ball_source
from trainers.spec import TrainSettings, n_ball_samples

BATCH = 100
EPSILONS = (0.01, 0.1, 0.2)
EPS_RSS = 0.3
STATES = (("T1", 1.0), ("T1e-4", 1e-4))
TARGETS = {"eps0.01_T1": 1.4, "eps0.1_T1e-4": 5.0, "eps0.2_T1e-4": 8.0}
RSS_TARGET_GIB = 4.0
SAMPLE_SEED = 1234
GIB = 2**30


@dataclass
class Cell:
    state: str
    temperature: float
    eps: float
    n: int
    ours_s: list[float]
    ref_s: list[float]
    backward_fraction: float
    grad_rel_diff: float | None
    ref_skipped: str | None = None

    @property
    def key(self) -> str:
        return f"eps{self.eps:g}_{self.state}"

    @property
    def speedup(self) -> float | None:
        return min(self.ref_s) / min(self.ours_s) if self.ref_s else None


def load_data(data_dir: str | None) -> tuple[Dataset, str]:
    try:
        return load_avila(data_dir), "avila"
    except DataError as exc:
        print(f"WARNING: {exc}; falling back to the synthetic data set (the T=1e-4 figures are "
              f"not comparable)", file=sys.stderr)
        return make_synthetic(), "synthetic"


def pretrain(data: Dataset, epochs: int, seed: int) -> MLP:
    """Plain CE training (the `regular` method's optimiser) so that T=1e-4 meets a fitted model."""
    model = build_model(seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    gen = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
            opt.step()
    return model


def reference_step(model: nn.Module, samples: Tensor, y: Tensor, temperature: float) -> None:
    """The formula in one graph: all B*N samples and their activations held at once."""
    b, n, d = samples.shape
    ce = F.cross_entropy(model(samples.reshape(b * n, d)), y.repeat_interleave(n),
                         reduction="none").view(b, n)
    (temperature * torch.logsumexp(ce / temperature, 1)).mean().backward()


def ours_step(model: nn.Module, x: Tensor, y: Tensor, eps: float, temperature: float,
              chunk_size: int, kernel: Kernel = Kernel.CHUNKED,
              precision: Precision = Precision.IEEE) -> SmoothMaxStats:
    stats = SmoothMaxStats()
    source = uniform_ball_source(x, eps, n_ball_samples(eps), chunk_size, SAMPLE_SEED)
    smoothed_max_ce_backward(model, source, y, temperature, kernel=kernel, precision=precision,
                             stats=stats)
    return stats


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    gc.collect()
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def grad_of(model: nn.Module, fn: Callable[[], object]) -> tuple[float, object, list[Tensor]]:
    model.zero_grad(set_to_none=True)
    seconds, out = timed(fn, next(model.parameters()).device)
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return seconds, out, grads


def rel_diff(got: list[Tensor], want: list[Tensor]) -> float:
    return max(float((g - w).abs().max() / w.abs().max()) for g, w in zip(got, want, strict=True))


def reference_fits(n_samples: int, hidden: int, device: torch.device) -> str | None:
    """Why the reference cannot run here (its activations need more memory than is free)."""
    need = n_samples * hidden * 4 * 7 + GIB  # ~16 GiB measured at eps=0.2
    available = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else \
        _meminfo_bytes("MemAvailable")
    if available is not None and need > available:
        return f"needs ~{need / GIB:.0f} GiB, {available / GIB:.0f} GiB available"
    return None


def _meminfo_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def measure_cell(model: nn.Module, x: Tensor, y: Tensor, state: str, temperature: float,
                 eps: float, args: argparse.Namespace) -> Cell:
    n = n_ball_samples(eps)
    source = uniform_ball_source(x, eps, n, args.chunk_size, SAMPLE_SEED)
    skip = "--no-reference" if args.no_reference else reference_fits(BATCH * n, args.hidden,
                                                                          x.device)
    cell = Cell(state, temperature, eps, n, [], [], 1.0, None, skip)

    def ref() -> None:
        samples = torch.cat([source.chunk(c) for c in range(source.n_chunks)], 1)
        reference_step(model, samples, y, temperature)

    def ours() -> SmoothMaxStats:
        return ours_step(model, x, y, eps, temperature, args.chunk_size)

    ref_grads: list[Tensor] | None = None
    for r in range(args.repeats):
        run_ref = cell.ref_skipped is None and (not cell.ref_s or sum(cell.ref_s) < args.ref_budget)
        if run_ref and r % 2 == 0:
            seconds, _, ref_grads = grad_of(model, ref)
            cell.ref_s.append(seconds)
        seconds, stats, grads = grad_of(model, ours)
        cell.ours_s.append(seconds)
        if run_ref and r % 2 == 1:
            seconds, _, ref_grads = grad_of(model, ref)
            cell.ref_s.append(seconds)
        assert isinstance(stats, SmoothMaxStats)
        cell.backward_fraction = stats.backward_samples / stats.samples
        if ref_grads is not None and cell.grad_rel_diff is None:
            cell.grad_rel_diff = rel_diff(grads, ref_grads)
    return cell


def rss_child(payload: Path, device: torch.device) -> None:
    """One of our steps at eps=0.3 in a fresh process, so that its peak RSS is its own."""
    data = torch.load(payload, weights_only=True)
    model = build_model(seed=0).to(device)
    model.load_state_dict(data["model"])
    before = _status_rss()
    t0 = time.perf_counter()
    stats = ours_step(model, data["x"].to(device), data["y"].to(device), EPS_RSS,
                      float(data["temperature"]), int(data["chunk_size"]))
    _sync(device)
    seconds = time.perf_counter() - t0
    peak = _status_rss("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_rss_bytes": peak, "rss_before_bytes": before, "seconds": seconds,
                      "backward_fraction": stats.backward_samples / stats.samples}))


def _status_rss(field: str = "VmRSS") -> int | None:
    """VmRSS, or VmHWM (peak) of this process's memory map. Not ru_maxrss: across a spawn Linux
    folds the parent's peak into the child's ru_maxrss (the parent has just held the reference's
    ~16 GiB), while VmHWM starts afresh with the new program."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def measure_rss(model: nn.Module, x: Tensor, y: Tensor, temperature: float,
                chunk_size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "payload.pt"
        torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()},
                    "x": x.cpu(), "y": y.cpu(), "temperature": temperature,
                    "chunk_size": chunk_size}, payload)
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(payload),
                              "--threads", str(torch.get_num_threads()),
                              "--device", str(x.device)],
                             check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({torch.get_num_threads()} threads)"


def _loadavg() -> str:
    """Other processes on the CPU slow both sides; the load average tells how much."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def fmt(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    return f"{min(seconds):8.3f} ({statistics.median(seconds):.3f})"


def print_table(cells: list[Cell], rss: dict[str, dict[str, float]], dataset: str,
                args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    print(f"\nrobust step, B={BATCH}, MLP 8-{args.hidden}-{args.hidden}-12, data={dataset}, "
          f"chunk_size={args.chunk_size}, torch threads={torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, repeats={args.repeats}, "
          f"device={_device_name(args.device)}; seconds: min (median)", file=out)
    head = (f"{'state':6} {'eps':>5} {'N':>7} {'ours s/step':>18} {'ours samples/s':>15} "
            f"{'ref s/step':>18} {'ref samples/s':>14} {'speedup':>8} {'bwd %':>7} "
            f"{'grad diff':>9}  target")
    print(head, file=out)
    print("-" * len(head), file=out)
    for c in cells:
        samples = BATCH * c.n
        ref_rate = f"{samples / min(c.ref_s):14.3g}" if c.ref_s else f"{'-':>14}"
        speed = f"{c.speedup:7.2f}x" if c.speedup is not None else f"{'-':>8}"
        diff = f"{c.grad_rel_diff:9.1e}" if c.grad_rel_diff is not None else f"{'-':>9}"
        target = TARGETS.get(c.key)
        verdict = ""
        if target is not None:
            met = c.speedup is not None and c.speedup >= target
            verdict = f">= {target:g}x {'met' if met else 'MISSED'}"
        if c.ref_skipped:
            verdict += f" (reference skipped: {c.ref_skipped})"
        print(f"{c.state:6} {c.eps:5g} {c.n:7d} {fmt(c.ours_s):>18} "
              f"{samples / min(c.ours_s):15.3g} {fmt(c.ref_s):>18} {ref_rate} {speed} "
              f"{100 * c.backward_fraction:6.2f}% {diff}  {verdict}", file=out)
    n = n_ball_samples(EPS_RSS)
    for state, r in rss.items():
        peak = r["peak_rss_bytes"] / GIB
        ok = "met" if peak <= RSS_TARGET_GIB else "MISSED"
        print(f"eps={EPS_RSS:g} (N={n}, {BATCH * n} samples), state {state}: peak RSS "
              f"{peak:.2f} GiB (process at start {r['rss_before_bytes'] / GIB:.2f} GiB), "
              f"{r['seconds']:.1f} s/step, bwd {100 * r['backward_fraction']:.2f}%  "
              f"target <= {RSS_TARGET_GIB:g} GiB {ok}", file=out)
    print("bwd %: samples that went through a backward; grad diff: max relative difference of "
          "the two gradients (float32; at T=1e-4 the reference's own rounding is ~1e-4/T).", file=out)


def summary(cells: list[Cell], rss: dict[str, dict[str, float]], dataset: str) -> dict[str, object]:
    speedups = {key: next((c.speedup for c in cells if c.key == key), None) for key in TARGETS}
    peak = max((r["peak_rss_bytes"] / GIB for r in rss.values()), default=None)
    met = {key: (s := speedups[key]) is not None and s >= t for key, t in TARGETS.items()}
    met["peak_rss_eps0.3"] = peak is not None and peak <= RSS_TARGET_GIB
    return {"speedup": speedups,
            "peak_rss_gib_eps0.3": peak, "targets_met": met, "data": dataset,
            "cells": [asdict(c) | {"speedup": c.speedup} for c in cells],
            "rss_eps0.3": rss, "torch_threads": torch.get_num_threads()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--data-dir", default=os.environ.get("DROSWEEP_DATA_DIR"),
                   help="Avila folder (default: $DROSWEEP_DATA_DIR)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per cell (default 3)")
    p.add_argument("--ref-budget", type=float, default=45.0,
                   help="stop repeating the reference of a cell after this many seconds")
    p.add_argument("--pretrain-epochs", type=int, default=20,
                   help="plain CE epochs before the T=1e-4 state (default 20)")
    p.add_argument("--chunk-size", type=int, default=TrainSettings().chunk_size)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--rss-states", choices=["T1e-4", "both", "none"], default="T1e-4",
                   help="states of the eps=0.3 RSS step (T1 backpropagates all 19.5M samples: "
                        "~1 min more)")
    p.add_argument("--no-reference", action="store_true",
                   help="time only ours (no one-graph reference)")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    p.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.hidden = TrainSettings().hidden
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args


def _passive_openmp(argv: list[str]) -> None:
    """Re-run this script with an OpenMP wait policy fit for the load, unless the caller chose."""
    if "OMP_WAIT_POLICY" not in os.environ:
        quiet = os.getloadavg()[0] < 0.75 * (os.cpu_count() or 1)
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE" if quiet else "PASSIVE"
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _passive_openmp(argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.rss_child is not None:
        rss_child(args.rss_child, device)
        return 0
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else \
        (lambda *a: print(*a, flush=True))
    log(f"load average at start: {_loadavg()}")
    data, dataset = load_data(args.data_dir)
    pick = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(args.seed))
    x, y = data.x_train[pick[:BATCH]].to(device), data.y_train[pick[:BATCH]].to(device)
    t0 = time.perf_counter()
    trained = pretrain(data, args.pretrain_epochs, args.seed)
    with torch.no_grad():
        acc = float((trained(data.x_test).argmax(1) == data.y_test).float().mean())
    log(f"pre-trained {args.pretrain_epochs} epochs in {time.perf_counter() - t0:.1f} s "
        f"(test accuracy {acc:.3f})")
    models = {"T1": build_model(seed=args.seed).to(device), "T1e-4": trained.to(device)}
    cells: list[Cell] = []
    for state, temperature in STATES:
        for eps in EPSILONS:
            cell = measure_cell(models[state], x, y, state, temperature, eps, args)
            log(f"  {state:6} eps={eps:g}: ours {min(cell.ours_s):.3f} s, ref "
                f"{min(cell.ref_s) if cell.ref_s else float('nan'):.3f} s")
            cells.append(cell)
    rss: dict[str, dict[str, float]] = {}
    for state, temperature in reversed(STATES):
        if args.rss_states in (state, "both"):
            rss[state] = measure_rss(models[state], x, y, temperature, args.chunk_size)
            log(f"  {state:6} eps={EPS_RSS:g}: peak RSS "
                f"{rss[state]['peak_rss_bytes'] / GIB:.2f} GiB")
    log(f"load average at end: {_loadavg()}")
    print_table(cells, rss, dataset, args, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary(cells, rss, dataset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
