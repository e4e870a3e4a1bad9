"""`drosweep status --detailed` on a synthetic 10,000-trial study root, against reading torch
checkpoints for the same trials.

Usage: python benchmarks/status_detailed.py [--trials-per-cell 100] [--keep DIR] [--json]
                                            [--repeat N] [--reference-tree DIR]

The root holds 4 methods x 25 radii x 100 trials (regular per radius): 40% DONE, 10% FAILED,
10% never submitted, 40% in one SLURM submission (half running, half pending) with a progress
file each. `sacct` is a script on PATH that prints the recorded states, so the command runs
exactly as on a login node (one sacct call). The reference: `torch.load(weights_only=True)` of a
checkpoint of the paper's model (8-200-200-12 plus its optimizer-free state), timed on a sample
and scaled to every trial not done: what status would cost if it opened checkpoints.

`--reference-tree DIR` also runs the same commands with the code in DIR (e.g. `git archive` of an
older commit unpacked there), in turn with this tree's, and prints the ratios. Wall times follow
the machine's load; the CPU seconds of the process (user + system), the number of modules the
command imports and the time to import them vary much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import ledger
from jobs import DoneMarker, FailedMarker, Paths, expand, load_study
from trainers.progress import Progress

STUDY = """
name = "bench"
root = "{root}"
dataset = "synthetic"
methods = ["regular", "robust", "adversarial", "langevin"]
radii = [{radii}]
trials = {trials}
regular_per_radius = true
"""


def build_root(folder: Path, trials_per_cell: int) -> tuple[Path, int]:
    radii = ", ".join(f"{0.01 * (i + 1):.2f}" for i in range(25))
    study_file = folder / "study.toml"
    study_file.write_text(STUDY.format(root=folder / "root", radii=radii,
                                       trials=trials_per_cell))
    study = load_study(study_file)
    paths = Paths(study.root)
    paths.root.mkdir(parents=True)
    paths.study_file.write_text(study.text)
    specs = expand(study)
    submitted: list[str] = []
    sacct_lines: list[str] = []
    now = time.time()
    for i, t in enumerate(specs):
        folder_i = paths.trial_dir(t)
        folder_i.mkdir(parents=True)
        kind = i % 10
        if kind < 4:
            paths.done(t).write_text(json.dumps(asdict(DoneMarker(
                key=t.key, model_sha256="0" * 64, steps=150000, epochs=1500, wall_s=3600.0,
                final_loss=0.1, resumed_from=0, host="node1", slurm_job_id="1_1",
                finished_at="2026-01-01T00:00:00+00:00", spec=t.train_spec.to_dict()))))
        elif kind == 4:
            paths.failed(t).write_text(json.dumps(asdict(FailedMarker(
                key=t.key, error="RuntimeError: CUDA out of memory", traceback="Traceback ...",
                host="node2", slurm_job_id=None, failed_at="2026-01-01T00:00:00+00:00"))))
        elif kind < 9:
            submitted.append(t.key)
            # the fields every version reads (an older tree, --reference-tree, rejects newer
            # ones): running trials get no measured rate, their ETA falls back to the estimate
            paths.progress(t).write_text(json.dumps({k: v for k, v in asdict(Progress(
                step=1000 * kind, total=150000, epoch=10 * kind, finished=False,
                updated_at=now)).items() if v is not None}))
    tasks = tuple(ledger.TaskRecord(i, f"5000_{i}", (key,)) for i, key in enumerate(submitted))
    ledger.append(paths.ledger, ledger.Submission(
        submission_id="bench", executor="slurm", array_id="5000", submitted_at=ledger.now_iso(),
        reason="submit", fingerprint=study.fingerprint, tasks=tasks))
    for i in range(len(tasks)):
        sacct_lines.append(f"5000_{i}|{'RUNNING' if i % 2 else 'PENDING'}")
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    (folder / "sacct.txt").write_text("\n".join(sacct_lines) + "\n")
    script = bin_dir / "sacct"
    script.write_text(f"#!/bin/sh\ncat {folder / 'sacct.txt'}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return study_file, len(specs)


REPO = Path(__file__).resolve().parents[1]
IMPORTS = ("import sys, time; t = time.perf_counter(); from drosweep.cli import build_parser; "
           "build_parser('status'); print(len(sys.modules), time.perf_counter() - t)")


def _env(bin_dir: Path, tree: Path) -> dict[str, str]:
    """The fake sacct first on PATH; the code of `tree` first on the import path (it is also
    the working directory, which `python -m` and `-c` put first)."""
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                PYTHONPATH=str(tree))


def time_command(study_file: Path, bin_dir: Path, *extra: str,
                 tree: Path = REPO) -> tuple[float, float, str]:
    """Wall and CPU (user + system) seconds of `drosweep status` run with the code in `tree`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "drosweep", "status", str(study_file), *extra],
                          env=_env(bin_dir, tree), cwd=tree, capture_output=True, text=True,
                          check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def import_cost(tree: Path) -> tuple[int, float]:
    """Modules loaded and seconds spent importing what `drosweep status` imports."""
    out = subprocess.run([sys.executable, "-c", IMPORTS], env=_env(Path("."), tree), cwd=tree,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def measure(study_file: Path, bin_dir: Path, trees: dict[str, Path],
            repeat: int) -> dict[str, dict[str, float]]:
    """Median figures of each tree, the trees run in turn (A B A B ...) so drifting load hits
    both alike; the first round only warms the page cache."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    outputs: dict[str, str] = {}
    for round_ in range(repeat + 1):
        for name, tree in trees.items():
            s_wall, s_cpu, _ = time_command(study_file, bin_dir, tree=tree)
            d_wall, d_cpu, out = time_command(study_file, bin_dir, "--detailed", tree=tree)
            modules, import_s = import_cost(tree)
            outputs[name] = out
            if round_ == 0:
                continue
            for key, value in (("status_s", s_wall), ("status_cpu_s", s_cpu),
                               ("status_detailed_s", d_wall), ("status_detailed_cpu_s", d_cpu),
                               ("modules", modules), ("import_s", import_s)):
                samples[name].setdefault(key, []).append(value)
    if len(set(outputs.values())) > 1:
        raise SystemExit("the trees print different `status --detailed` tables")
    result = {name: {k: statistics.median(v) for k, v in figures.items()}
              for name, figures in samples.items()}
    result["rows"] = {"rows": len(next(iter(outputs.values())).splitlines()) - 1}
    return result


def checkpoint_load_s(folder: Path, sample: int = 50) -> float:
    """Seconds per torch.load of one trial checkpoint of the paper's model."""
    sizes = [(200, 8), (200,), (200, 200), (200,), (12, 200), (12,)]
    state = {"model": {f"w{i}": torch.randn(*s) for i, s in enumerate(sizes)},
             "step": 1, "epoch": 1, "perm": torch.randperm(10430),
             "rng": {"global": torch.get_rng_state(), "data": torch.get_rng_state()}}
    files = []
    for i in range(sample):
        path = folder / f"ckpt{i}.pt"
        torch.save(state, path)
        files.append(path)
    start = time.perf_counter()
    for path in files:
        torch.load(path, map_location="cpu", weights_only=True)
    return (time.perf_counter() - start) / sample


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials-per-cell", type=int, default=100)
    ap.add_argument("--keep", type=Path, default=None, help="build the root here and keep it")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each command (median)")
    ap.add_argument("--reference-tree", type=Path, default=None, metavar="DIR",
                    help="also time the code in DIR, in turn with this tree's, and print ratios")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    trees = {"this": REPO}
    if args.reference_tree is not None:
        trees["reference"] = args.reference_tree.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if (folder / "study.toml").is_file():  # a root kept by an earlier run
            study_file = folder / "study.toml"
            n = len(expand(load_study(study_file)))
        else:
            study_file, n = build_root(folder, args.trials_per_cell)
        build_s = time.perf_counter() - t0
        figures = measure(study_file, folder / "bin", trees, max(1, args.repeat))
        rows = int(figures.pop("rows")["rows"])
        per_load = checkpoint_load_s(folder)
        torch_s = per_load * rows
    mine = figures["this"]
    result: dict[str, object] = {
        "device": "CPU", "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
        "trials": n, "rows": rows, "build_s": build_s, **mine,
        "torch_checkpoints_s": torch_s, "speedup_vs_torch": torch_s / mine["status_detailed_s"]}
    if "reference" in figures:
        ref = figures["reference"]
        result["reference"] = ref
        result["ratio_reference_over_this"] = {k: ref[k] / mine[k] for k in mine if mine[k]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{n} trials ({rows} not done), root built in {build_s:.1f} s; CPU, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    names = list(figures)
    print(f"{'':<24}" + "".join(f"{name:>12}" for name in names)
          + ("   reference/this" if len(names) > 1 else ""))
    for key, label in (("status_s", "status (wall s)"), ("status_cpu_s", "status (CPU s)"),
                       ("status_detailed_s", "--detailed (wall s)"),
                       ("status_detailed_cpu_s", "--detailed (CPU s)"),
                       ("import_s", "imports (s)"), ("modules", "modules imported")):
        values = [figures[name][key] for name in names]
        ratio = f"{values[1] / values[0]:>16.2f}x" if len(values) > 1 and values[0] else ""
        print(f"{label:<24}" + "".join(f"{v:>12.3g}" for v in values) + ratio)
    print("target: status --detailed < 2 s (wall, on an idle machine)")
    print(f"torch.load of {rows} checkpoints (est. from 50): {torch_s:6.2f} s  "
          f"-> progress files are {torch_s / mine['status_detailed_s']:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
