"""Trial-steps per second of k packed trials against k sequential single-trial runs.

Usage: python benchmarks/packing.py [--device cpu|cuda] [--ks 1,8,51] [--json]

Both sides run the same training step of `trainers.loop` (the packed one with k trials, the
sequential one k times with one trial), on the same data, in the same process, interleaved, so the
printed ratios compare like with like. `adversarial` is measured with its PGD attack on from the
first step; `robust` at eps=0.01 (N=746) at the start of training (T near 1: every sample carries
weight). With --device cuda it also times one robust step at eps=0.3 (N=194,796 per point, one
trial) and reports its FLOP rate against --peak-tflops (default: H100 SXM fp32, 67 TFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.data import Dataset, load_avila, make_synthetic
from trainers.device import FP32
from trainers.loop import PackState, TrainPaths
from trainers.spec import Method, TrainSettings, TrainSpec, n_ball_samples

CASES = {  # name: (method, radius, steps timed per repeat)
    "regular": (Method.REGULAR, 0.0, 40),
    "adversarial": (Method.ADVERSARIAL, 0.1, 6),
    "robust0.01": (Method.ROBUST, 0.01, 1),
    "langevin": (Method.LANGEVIN, 0.1, 2),
}
DEFAULT_CASES = ("regular", "adversarial", "robust0.01")  # langevin: --cases (slow on a CPU)
# multiply-adds per sample through 8 -> 200 -> 200 -> 12, forward; backward is about twice that
MACS_PER_SAMPLE = 8 * 200 + 200 * 200 + 200 * 12


def _data(data_dir: str | None) -> Dataset:
    folder = data_dir or os.environ.get("DROSWEEP_DATA_DIR")
    if folder:
        return load_avila(folder)
    print("warning: no --data-dir / $DROSWEEP_DATA_DIR: timing on synthetic data", file=sys.stderr)
    return make_synthetic(n_train=10430, n_test=100)


def _pack(method: Method, radius: float, seeds: list[int], data: Dataset,
          device: torch.device) -> PackState:
    settings = TrainSettings(adv_start_epoch=0)
    specs = [TrainSpec(method, radius, s, settings, "avila") for s in seeds]
    paths = [TrainPaths(Path(os.devnull), Path(os.devnull)) for _ in seeds]
    return PackState(specs, paths, [data] * len(seeds), device, FP32)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_steps(pack: PackState, steps: int, device: torch.device) -> float:
    pack.run_step()  # warm-up (allocations, kernel selection)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        pack.run_step()
    _sync(device)
    return time.perf_counter() - t0


def measure(name: str, k: int, data: Dataset, device: torch.device,
            repeats: int) -> tuple[float, float]:
    """(packed, sequential) trial-steps per second, medians over repeats."""
    method, radius, steps = CASES[name]
    seeds = list(range(k))
    packed = _pack(method, radius, seeds, data, device)
    singles = [_pack(method, radius, [s], data, device) for s in seeds]
    packed_rates, seq_rates = [], []
    for _ in range(repeats):
        packed_rates.append(k * steps / _time_steps(packed, steps, device))
        seq_time = sum(_time_steps(single, steps, device) for single in singles)
        seq_rates.append(k * steps / seq_time)
    return statistics.median(packed_rates), statistics.median(seq_rates)


def robust_flops_fraction(data: Dataset, device: torch.device, peak_tflops: float) -> float:
    pack = _pack(Method.ROBUST, 0.3, [0], data, device)
    seconds = _time_steps(pack, 2, device) / 2
    samples = pack.spec.settings.batch_size * n_ball_samples(0.3)
    # pass 1 forward over all samples + (at T=1, fresh model) forward+backward over all of them
    flops = 2 * MACS_PER_SAMPLE * samples * (1 + 3)
    return flops / seconds / (peak_tflops * 1e12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ks", default="1,8,51")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help=f"comma-separated, of {', '.join(CASES)} (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--peak-tflops", type=float, default=67.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = _data(args.data_dir)
    ks = [int(k) for k in args.ks.split(",")]
    targets = {"regular": (2.0, 20.0), "adversarial": (2.0, 20.0)}
    speedup: dict[str, float] = {}
    rows = []
    for name in args.cases.split(","):
        for k in ks:
            packed, seq = measure(name, k, data, device, args.repeats)
            speedup[f"{name}_k{k}"] = packed / seq
            rows.append((name, k, packed, seq, packed / seq))
            print(f"  {name} k={k}: packed {packed:.1f}, sequential {seq:.1f} trial-steps/s",
                  file=sys.stderr, flush=True)
    out: dict[str, object] = {"device": torch.cuda.get_device_name(device)
                              if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
                              "speedup": speedup}
    if device.type == "cuda":
        out["robust0.3_fp32_peak_fraction"] = robust_flops_fraction(data, device, args.peak_tflops)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"device: {out['device']}")
    print(f"{'case':<12} {'k':>3} {'packed trial-steps/s':>21} {'sequential':>11} {'speedup':>8}  target")
    for name, k, packed, seq, ratio in rows:
        cpu_t, gpu_t = targets.get(name, (None, None))
        goal = (cpu_t if device.type == "cpu" else gpu_t) if k == max(ks) else None
        verdict = "" if goal is None else f">= {goal:g}x: {'met' if ratio >= goal else 'MISSED'}"
        print(f"{name:<12} {k:>3} {packed:>21.1f} {seq:>11.1f} {ratio:>7.2f}x  {verdict}")
    if "robust0.3_fp32_peak_fraction" in out:
        print(f"robust eps=0.3 step: {100 * float(out['robust0.3_fp32_peak_fraction']):.1f}% of "  # type: ignore[arg-type]
              f"{args.peak_tflops:g} TFLOP/s fp32 peak (target >= 40%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
