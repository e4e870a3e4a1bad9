"""Arguments shared by every study command."""

from __future__ import annotations

import argparse


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="study file (TOML)")
    p.add_argument("--root", default=None, help="study root (default: the `root` of the study file)")
