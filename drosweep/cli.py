"""The `drosweep` console script. Subcommands only parse, call one function of a room, and print.

Each group of subcommands lives in its own module with a `register(subparsers)` function; bad
input raises `UsageError` (or a room's own input error) and exits with code 2 and one clear line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from drosweep import __version__
from drosweep.errors import INPUT_ERRORS, UsageError


def build_parser() -> argparse.ArgumentParser:
    from drosweep import cmd_data, cmd_doctor, cmd_reduce, cmd_study, cmd_train

    parser = argparse.ArgumentParser(prog="drosweep", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"drosweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (cmd_train, cmd_data, cmd_study, cmd_reduce, cmd_doctor):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except INPUT_ERRORS as exc:
        print(f"drosweep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"drosweep {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


__all__ = ["UsageError", "build_parser", "main"]
