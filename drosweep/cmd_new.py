"""`drosweep new FILE`: start a study from the annotated template (every key, its default, its
doc), generated from the settings' declarations."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from drosweep.render import format_new


def register(sub: Any) -> None:
    p = sub.add_parser("new", help="write an annotated study file to start from",
                       description="Write FILE: a study with every key of every table, its "
                                   "default and a one-line doc (optional keys commented out). "
                                   "An existing FILE is refused, never overwritten.")
    p.add_argument("file", type=Path, metavar="FILE", help="the study file to create")
    p.set_defaults(func=run_new)


def run_new(args: argparse.Namespace) -> int:
    from jobs.template import write_template

    print(format_new(write_template(args.file)))
    return 0
