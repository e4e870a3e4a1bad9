"""The `drosweep` console script. Subcommands only parse, call one function of a package, and print.

Each group of subcommands lives in its own module with a `register(subparsers)` function; bad
input raises `UsageError` (or a package's own input error) and exits with code 2 and one clear line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from common.determinism import pin_thread_env
from drosweep import __version__
from drosweep.errors import UsageError, input_errors

DESCRIPTION = """\
Plan, run, resume, reduce and plot the smoothed robust pointwise training study of
"Distributionally Robust Optimization via Regularized Robust Optimization": a study file
names the grid (method x radius x trials); drosweep packs it into job arrays (SLURM through
submitit, or this machine), trains with checkpoints that survive preemption, resubmits only
what is not done, evaluates every model into one table and draws the paper's figures.

A first run on this machine:  drosweep demo
A study of your own:          drosweep plan STUDY.toml, then submit, status, reduce, report"""
MODULES = ("cmd_train", "cmd_data", "cmd_study", "cmd_reduce", "cmd_ops", "cmd_doctor", "cmd_new")
# which module registers each command: a command loads only its own module (`status` never
# imports torch, pandas or matplotlib); any other word (--help, a typo) loads them all
COMMANDS = {"train": "cmd_train", "data": "cmd_data", "plan": "cmd_study",
            "submit": "cmd_study", "resume": "cmd_study", "status": "cmd_study",
            "reduce": "cmd_reduce", "plot": "cmd_reduce", "report": "cmd_reduce",
            "demo": "cmd_reduce", "logs": "cmd_ops", "cancel": "cmd_ops", "export": "cmd_ops",
            "doctor": "cmd_doctor", "new": "cmd_new"}


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other bad input (the full usage is `-h` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} -h`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="drosweep", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"drosweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = (COMMANDS[command],) if command in COMMANDS else MODULES
    for name in names:
        importlib.import_module(f"drosweep.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    pin_thread_env()  # before any command imports torch
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    try:
        result = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:  # `drosweep status | head`: the reader has all it wants
        _silence_stdout()
        return 141
    except Exception as exc:
        if not isinstance(exc, input_errors()):
            raise
        print(f"drosweep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a stopped local run says what was kept
        print(f"drosweep {args.command}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130
    return int(result or 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


__all__ = ["UsageError", "build_parser", "main"]
