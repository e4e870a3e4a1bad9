"""`drosweep data fetch | ensure [NAME]`: download a data set and verify it (ensure: only when
missing); `drosweep data list`: the data sets of the registry (trainers.datasets)."""

from __future__ import annotations

import argparse
from typing import Any

from trainers.datasets import DataError, get_source, names


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="get and verify the data sets (UCI Avila, grid, ...)")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetchable = [n for n in names() if get_source(n).needs_fetch]
    f = data_sub.add_parser("fetch", help="download a data set and verify it")
    f.add_argument("name", nargs="?", default="avila", choices=fetchable,
                   help="the data set (default: avila)")
    f.add_argument("--dest", default=None,
                   help="folder to put the files in (default: $DROSWEEP_DATA_DIR, else the user cache)")
    f.set_defaults(func=run_fetch)
    e = data_sub.add_parser("ensure", help="fetch and verify the data unless it is already there "
                                           "(what scripts/demo.sh and scripts/test.sh run)")
    e.add_argument("name", nargs="?", default="avila", choices=fetchable,
                   help="the data set (default: avila)")
    e.add_argument("--dest", default=None,
                   help="folder (default: $DROSWEEP_DATA_DIR, else the user cache)")
    e.set_defaults(func=run_ensure)
    ls = data_sub.add_parser("list", help="the data sets a study can name")
    ls.set_defaults(func=run_list)


def _verified(name: str, folder: Any) -> str:
    source = get_source(name)
    return (f"{source.title} data verified ({source.train_rows} train / {source.test_rows} test "
            f"rows, {source.n_classes} classes) in {folder}")


def run_fetch(args: argparse.Namespace) -> int:
    from trainers.data import load_dataset  # torch only for this command

    source = get_source(args.name)
    folder = source.folder(args.dest)
    assert source.fetch is not None and folder is not None
    source.fetch(folder)
    load_dataset(args.name, folder)
    print(_verified(args.name, folder))
    if source.citation:
        print(source.citation)
    return 0


def run_ensure(args: argparse.Namespace) -> int:
    import sys

    from trainers.data import load_dataset

    source = get_source(args.name)
    folder = source.folder(args.dest)
    assert source.fetch is not None and folder is not None
    missing = source.missing_files(folder)
    if not missing:
        print(f"{source.title} data found in {folder}")
        return 0
    print(f"{source.title} data not found in {folder}: fetching it and verifying it",
          file=sys.stderr)
    try:
        source.fetch(folder)
    except DataError as exc:
        raise DataError(f"{source.title} data not found in {folder} (missing "
                        f"{', '.join(missing)}) and not downloadable: {exc}") from None
    load_dataset(args.name, folder)
    print(_verified(args.name, folder))
    return 0


def run_list(args: argparse.Namespace) -> int:
    for name in names():
        source = get_source(name)
        how = f"`drosweep data fetch {name}`" if source.needs_fetch else \
            "generated" if source.generated else "your files ([data] settings)"
        print(f"{name:<10} {source.description} ({how})")
    return 0
