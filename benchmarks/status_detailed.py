"""`drosweep status --detailed` on a synthetic 10,000-trial study root, against reading torch
checkpoints for the same trials.

Usage: python benchmarks/status_detailed.py [--trials-per-cell 100] [--keep DIR] [--json]

The root holds 4 methods x 25 radii x 100 trials (regular per radius): 40% DONE, 10% FAILED,
10% never submitted, 40% in one SLURM submission (half running, half pending) with a progress
file each. `sacct` is a script on PATH that prints the recorded states, so the command runs
exactly as on a login node (one sacct call). The reference: `torch.load(weights_only=True)` of a
checkpoint of the paper's model (8-200-200-12 plus its optimizer-free state), timed on a sample
and scaled to every trial not done: what status would cost if it opened checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
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
            paths.progress(t).write_text(json.dumps(asdict(Progress(
                step=1000 * kind, total=150000, epoch=10 * kind, finished=False,
                updated_at=now))))
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


def time_command(study_file: Path, bin_dir: Path, *extra: str) -> tuple[float, str]:
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cli = Path(sys.executable).with_name("drosweep")
    start = time.perf_counter()
    proc = subprocess.run([str(cli), "status", str(study_file), *extra], env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout


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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        study_file, n = build_root(folder, args.trials_per_cell)
        build_s = time.perf_counter() - t0
        time_command(study_file, folder / "bin")  # warm the page cache and imports
        summary_s, _ = time_command(study_file, folder / "bin")
        detailed_s, out = time_command(study_file, folder / "bin", "--detailed")
        rows = len(out.splitlines()) - 1
        per_load = checkpoint_load_s(folder)
        torch_s = per_load * rows
    result = {"device": "CPU", "trials": n, "rows": rows, "build_s": build_s,
              "status_s": summary_s, "status_detailed_s": detailed_s,
              "torch_checkpoints_s": torch_s, "speedup_vs_torch": torch_s / detailed_s}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{n} trials ({rows} not done), root built in {build_s:.1f} s")
        print(f"status             {summary_s:6.2f} s")
        print(f"status --detailed  {detailed_s:6.2f} s   (target < 2 s)")
        print(f"torch.load of {rows} checkpoints (est. from 50): {torch_s:6.2f} s  "
              f"-> progress files are {torch_s / detailed_s:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
