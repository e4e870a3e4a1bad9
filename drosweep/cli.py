"""The `drosweep` console script. Subcommands only parse, call one function of a room, and print.

Each group of subcommands lives in its own module with a `register(subparsers)` function; bad
input raises `UsageError` (or a room's own input error) and exits with code 2 and one clear line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from drosweep import __version__
from drosweep.errors import INPUT_ERRORS, UsageError


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other bad input (the full usage is `-h` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} -h`)\n")


def build_parser() -> argparse.ArgumentParser:
    from drosweep import cmd_data, cmd_reduce, cmd_study, cmd_train

    parser = _Parser(prog="drosweep", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"drosweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (cmd_train, cmd_data, cmd_study, cmd_reduce):
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
