"""`drosweep data fetch | ensure`: download UCI Avila and verify it (ensure: only when missing)."""

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
    e = data_sub.add_parser("ensure", help="fetch and verify the data unless it is already there "
                                           "(what scripts/demo.sh and scripts/test.sh run)")
    e.add_argument("--dest", default=None,
                   help="folder (default: $DROSWEEP_DATA_DIR, else the user cache)")
    e.set_defaults(func=run_ensure)


def run_fetch(args: argparse.Namespace) -> int:
    from trainers.data import fetch_avila  # torch only for this command

    folder = fetch_avila(args.dest)
    print(f"Avila data verified (10430 train / 10437 test rows, 12 classes) in {folder}")
    print("UCI Avila, CC BY 4.0: De Stefano et al., Eng. Appl. of AI 72 (2018) 99-110")
    return 0


def run_ensure(args: argparse.Namespace) -> int:
    import sys

    from trainers.data import AVILA_FILES, DataError, fetch_avila, resolve_data_dir

    folder = resolve_data_dir(args.dest)
    missing = [n for n in AVILA_FILES.values() if not (folder / n).is_file()]
    if not missing:
        print(f"Avila data found in {folder}")
        return 0
    print(f"Avila data not found in {folder}: fetching it from UCI and verifying it",
          file=sys.stderr)
    try:
        fetch_avila(folder)
    except DataError as exc:
        raise DataError(f"Avila data not found in {folder} (missing {', '.join(missing)}) and "
                        f"not downloadable: {exc}") from None
    print(f"Avila data verified (10430 train / 10437 test rows, 12 classes) in {folder}")
    return 0
