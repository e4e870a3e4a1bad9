"""The errors that mean "bad input": the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import importlib
import sys


class UsageError(ValueError):
    """Bad command-line input found by the CLI itself."""


# (module, class): rooms that define their own input errors
_ROOM_ERRORS = (("trainers.spec", "SpecError"), ("trainers.data", "DataError"),
                ("trainers.atomic", "StorageError"),
                ("jobs.errors", "StudyError"), ("cluster.errors", "ClusterError"),
                ("reduce.errors", "ReduceError"))


def input_errors() -> tuple[type[BaseException], ...]:
    """The input-error classes of the rooms loaded so far: an error can only come from a loaded
    module, so asking never imports torch or pandas into a command that does not need them."""
    errors: list[type[BaseException]] = [UsageError]
    for module, name in _ROOM_ERRORS:
        if module in sys.modules:
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)
