"""`drosweep data fetch`: download UCI Avila and verify it."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="get the UCI Avila data set")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = data_sub.add_parser("fetch", help="download avila.zip from UCI and verify it")
    f.add_argument("--dest", default=None,
                   help="folder to put the files in (default: $DROSWEEP_DATA_DIR, else the user cache)")
    f.set_defaults(func=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    from trainers.data import fetch_avila  # torch only for this command

    folder = fetch_avila(args.dest)
    print(f"Avila data verified (10430 train / 10437 test rows, 12 classes) in {folder}")
    print("UCI Avila, CC BY 4.0: De Stefano et al., Eng. Appl. of AI 72 (2018) 99-110")
    return 0
