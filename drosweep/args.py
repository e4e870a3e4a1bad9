"""Arguments shared by every study command."""

from __future__ import annotations

import argparse

from jobs.study import Study, load_study


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="study file (TOML)")
    p.add_argument("--root", default=None, help="study root (default: the `root` of the study file)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a setting of the study file, e.g. training.epochs=10 or "
                        "cluster.partition=a100 (repeatable; validated like the file)")


def study_from_args(args: argparse.Namespace) -> Study:
    """The study named on the command line, with its --root and --set applied."""
    return load_study(args.study, root=args.root, overrides=getattr(args, "overrides", ()))
