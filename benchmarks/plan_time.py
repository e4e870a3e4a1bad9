"""Wall time of `drosweep plan studies/paper.toml`, against the cost of starting Python with torch.

Usage: python benchmarks/plan_time.py [--runs 5] [--markers N] [--json]

Three figures, each the median of --runs fresh processes, measured in the same run so they
compare like with like on a busy machine: the CLI end to end; `python -c "import torch"` (the
floor every drosweep command pays today, since markers and checkpoints import torch); and the
plan's own work inside one process (reading the cluster, the study's DONE markers, packing).
With --markers N the plan reads a root where N of the paper's trials are DONE on one device model
(the study's own rates are used), written into a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _median_process(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, cwd=REPO, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _fill(root: Path, study_file: Path, markers: int) -> Path:
    from jobs import Paths, expand, load_study, write_done

    text = study_file.read_text().replace('device = "cuda"',
                                          'device = "cuda"\ndevice_model = "h100"')
    copy = root / "paper.toml"
    copy.write_text(text)
    study = load_study(copy, root=root / "study")
    paths = Paths(study.root)
    for trial in expand(study)[:markers]:
        write_done(paths, trial, model_sha256="0" * 64, steps=100, epochs=1, wall_s=10.0,
                   final_loss=0.1, resumed_from=0, device_model="NVIDIA H100 80GB HBM3", pack=4)
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--markers", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    study = REPO / "studies" / "paper.toml"
    with tempfile.TemporaryDirectory() as tmp:
        plan_args = ["plan", str(study)]
        if args.markers:
            copy = _fill(Path(tmp), study, args.markers)
            plan_args = ["plan", str(copy), "--root", str(Path(tmp) / "study")]
        cli = _median_process([sys.executable, "-m", "drosweep", *plan_args], args.runs)
        torch_floor = _median_process([sys.executable, "-c", "import torch"], args.runs)
        from drosweep.cli import main as drosweep

        work = []
        for _ in range(args.runs):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                drosweep(plan_args)
            work.append(time.perf_counter() - start)
    result = {"cli_s": cli, "import_torch_s": torch_floor, "plan_work_s": statistics.median(work),
              "cli_over_import_torch": cli / torch_floor, "markers": args.markers}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"drosweep plan paper.toml ({args.markers} DONE markers): {cli:.2f} s end to end; "
              f"`import torch` alone {torch_floor:.2f} s (ratio {cli / torch_floor:.2f}); "
              f"the plan's own work {result['plan_work_s']:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
