"""The errors that mean "bad input": the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from common.errors import InputError


class UsageError(InputError, ValueError):
    """Bad command-line input found by the CLI itself."""


def input_errors() -> tuple[type[BaseException], ...]:
    """What the CLI prints as one line with exit code 2: every package's input error derives from
    `common.errors.InputError`, so catching it imports nothing (no torch or pandas into a command
    that does not need them)."""
    return (InputError,)
