"""Every refusal of bad input derives from `common.errors.InputError` (what the CLI catches by
class, for one line and exit code 2) and keeps the built-in base its callers may catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.errors import ClusterError
from common.atomic import StorageError
from common.errors import InputError
from drosweep.errors import UsageError, input_errors
from jobs.errors import StudyError
from plots.results import ResultsError
from reduce.errors import ReduceError, WaitTimeout
from trainers.datasets import DataError
from trainers.spec import SpecError


@pytest.mark.parametrize(("error", "builtin"), [
    (UsageError, ValueError), (SpecError, ValueError), (DataError, RuntimeError),
    (StorageError, OSError), (StudyError, ValueError), (ClusterError, RuntimeError),
    (ReduceError, ValueError), (WaitTimeout, ValueError), (ResultsError, ValueError),
])
def test_every_input_error_is_one_and_keeps_its_builtin_base(error: type[Exception],
                                                             builtin: type[Exception]) -> None:
    assert issubclass(error, InputError) and issubclass(error, builtin)
    assert isinstance(error("bad"), input_errors())


def test_a_storage_error_keeps_its_errno(tmp_path: Path) -> None:
    err = StorageError.of(tmp_path, OSError(28, "No space left on device"))
    assert err.errno == 28 and "No space left on device" in str(err)
