"""The errors that mean "bad input": the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad command-line input found by the CLI itself."""


def _input_errors() -> tuple[type[BaseException], ...]:
    from trainers.atomic import StorageError
    from trainers.data import DataError
    from trainers.spec import SpecError

    errors: list[type[BaseException]] = [UsageError, SpecError, DataError, StorageError]
    try:  # rooms that may define their own input errors
        from jobs.errors import StudyError
        errors.append(StudyError)
    except ImportError:
        pass
    try:
        from cluster.errors import ClusterError
        errors.append(ClusterError)
    except ImportError:
        pass
    try:
        from reduce.errors import ReduceError
        errors.append(ReduceError)
    except ImportError:
        pass
    return tuple(errors)


INPUT_ERRORS = _input_errors()
