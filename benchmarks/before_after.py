"""Seconds per packed training step of this checkout against other checkouts, interleaved.

Usage: python benchmarks/before_after.py --ref PATH [--ref PATH ...] [--rounds 20]
       [--cases regular_k1,regular_k8,adversarial_k1] [--data-dir DIR] [--json]

Each checkout (this one, and each --ref, e.g. `git worktree add /tmp/before <commit>`)
runs in a worker process of its own that builds its packs once through its own
`benchmarks/packing.py`. The workers then time one block of steps per case and round, in a
random order per round, one worker at a time, so every checkout sees the same machine load over
the run (a shared machine's load moves by tens of percent within minutes). Printed per case:
the minimum and the median seconds per step over the rounds, and each checkout's ratio to the
first --ref (the "before": this checkout's ratio is after / before).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CASES = {  # name: (method name, radius, k, steps per block, first step)
    "regular_k1": ("regular", 0.0, 1, 100, 0),
    "regular_k8": ("regular", 0.0, 8, 40, 0),
    "adversarial_k1": ("adversarial", 0.1, 1, 8, 0),
    "robust0.01_k1": ("robust", 0.01, 1, 2, 0),
    # after the annealing (T = 1e-4): the pruned step, pass 2 on the kept samples only
    "robust0.1_lowT_k1": ("robust", 0.1, 1, 2, 10**6),
    "langevin_k1": ("langevin", 0.1, 1, 1, 0),
}
WARMUP = 3


def worker(tree: str, cases: list[str], data_dir: str | None) -> None:
    """Builds the packs of `tree`, then times one block of a case per line read from stdin."""
    sys.path.insert(0, tree)
    os.chdir(tree)
    import torch

    from benchmarks import packing  # the checkout's own: its trainers build its packs
    from trainers.spec import Method

    data = packing._data(data_dir)
    packs = {}
    for name in cases:
        method, radius, k, _, first = CASES[name]
        packs[name] = packing._pack(Method(method), radius, list(range(k)), data,
                                    torch.device("cpu"))
        packs[name].step = first
        for _ in range(WARMUP):
            packs[name].run_step()
    print("ready", flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            return
        steps = CASES[name][3]
        start = time.perf_counter()
        for _ in range(steps):
            packs[name].run_step()
        print(json.dumps((time.perf_counter() - start) / steps), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", action="append", default=[], help="another checkout")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cases", default="regular_k1,regular_k8,adversarial_k1")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = args.cases.split(",")
    if unknown := [c for c in cases if c not in CASES]:
        parser.error(f"unknown case {unknown[0]!r} (cases: {', '.join(CASES)})")
    if args.worker:
        worker(args.worker, cases, args.data_dir)
        return 0
    if not args.ref:
        parser.error("name at least one other checkout with --ref")
    trees = [str(HERE)] + [str(Path(r).resolve()) for r in args.ref]
    for tree in trees[1:]:
        if not (Path(tree) / "benchmarks" / "packing.py").is_file():
            parser.error(f"{tree}: not a checkout of this project (no benchmarks/packing.py)")
    command = [sys.executable, __file__, "--cases", args.cases, "--worker"]
    extra = ["--data-dir", args.data_dir] if args.data_dir else []
    workers = {t: subprocess.Popen([*command, t, *extra], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True) for t in trees}
    times: dict[str, dict[str, list[float]]] = {t: {c: [] for c in cases} for t in trees}
    loads: list[float] = []
    order = random.Random(0)
    try:
        for w in workers.values():
            assert w.stdin is not None and w.stdout is not None
            if w.stdout.readline().strip() != "ready":
                print("a worker failed to start (its error is above)", file=sys.stderr)
                return 1
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for case in cases:
                for tree in order.sample(trees, len(trees)):
                    w = workers[tree]
                    assert w.stdin is not None and w.stdout is not None
                    w.stdin.write(case + "\n")
                    w.stdin.flush()
                    times[tree][case].append(json.loads(w.stdout.readline()))
    finally:
        for w in workers.values():
            if w.stdin is not None:
                w.stdin.close()
            w.wait()
    summary = {t: {c: {"min_s": min(v), "median_s": statistics.median(v),
                       "min_ratio": min(v) / min(times[trees[1]][c]),
                       "median_ratio": statistics.median(v) / statistics.median(times[trees[1]][c])}
                   for c, v in per.items()} for t, per in times.items()}
    device = f"cpu ({os.cpu_count()} cores)"
    if args.json:
        print(json.dumps({"device": device, "rounds": args.rounds, "load_average": loads,
                          "trees": summary, "seconds_per_step": times}))
        return 0
    print(f"device: {device}; {args.rounds} rounds; load average (1 min) min "
          f"{min(loads):.2f}, median {statistics.median(loads):.2f}, max {max(loads):.2f}")
    print(f"ratios: to {trees[1]} (the first --ref)")
    for case in cases:
        print(f"{case}:")
        for tree in trees:
            s = summary[tree][case]
            print(f"  {tree:<40} min {s['min_s'] * 1e3:9.3f} ms (x{s['min_ratio']:.3f})  "
                  f"median {s['median_s'] * 1e3:9.3f} ms (x{s['median_ratio']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
