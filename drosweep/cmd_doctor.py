"""`drosweep doctor`: check this machine's training device and write its calibration file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the training device (CUDA when present) and "
                                      "measure its training rates into a calibration file")
    p.add_argument("-o", "--out", type=Path, default=Path("calibration.json"),
                   help="calibration file to write (default: ./calibration.json)")
    p.add_argument("-d", "--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument("--quick", action="store_true",
                   help="time only the cheapest steps (robust eps=0.01; packs of 8, langevin 1): "
                        "a minute or two on a small CPU")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cluster.doctor import run_doctor

    report = run_doctor(out=args.out, quick=args.quick, device=args.device, say=print)
    print("doctor: all checks passed" if report.ok else
          f"doctor: {len(report.failures)} check(s) failed")
    return 0 if report.ok else 1
