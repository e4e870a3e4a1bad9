"""The errors that mean "bad input": the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import sys


class UsageError(ValueError):
    """Bad command-line input found by the CLI itself."""


# (module, class): the packages' own input errors
_INPUT_ERRORS = (("trainers.spec", "SpecError"), ("trainers.datasets.registry", "DataError"),
                 ("common.atomic", "StorageError"),
                 ("jobs.errors", "StudyError"), ("cluster.errors", "ClusterError"),
                 ("reduce.errors", "ReduceError"))


def input_errors() -> tuple[type[BaseException], ...]:
    """The input-error classes of the modules loaded so far: an error can only come from a loaded
    module, so asking imports nothing (no torch or pandas into a command that does not need
    them)."""
    errors: list[type[BaseException]] = [UsageError]
    for module, name in _INPUT_ERRORS:
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)
