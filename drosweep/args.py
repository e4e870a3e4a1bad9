"""Arguments shared by every study command."""

from __future__ import annotations

import argparse

from drosweep.render import print_root_overrides
from jobs.frozen import load_at_root
from jobs.study import Study


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?", default=None,
                   help="study file (TOML); without it, the study submitted at --root")
    p.add_argument("--root", default=None, help="study root (default: the `root` of the study file)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a setting of the study file, e.g. training.epochs=10 or "
                        "cluster.partition=a100 (repeatable; validated like the file; the "
                        "root's own, from its submit, apply without repeating them)")


def study_from_args(args: argparse.Namespace) -> Study:
    """The study named on the command line (the file, or the one frozen at --root), with its
    --root and --set applied after the overrides its root was submitted with (said on stderr
    when they were not given)."""
    study, unasked = load_at_root(args.study, args.root, getattr(args, "overrides", ()))
    if unasked:
        print_root_overrides(study, unasked)
    return study
