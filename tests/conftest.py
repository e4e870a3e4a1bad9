"""Shared fixtures. The Avila files come from $DROSWEEP_DATA_DIR, else ../shared/data/avila."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Without a GPU the fused robust kernel's tests run it under Triton's interpreter, which a
# kernel takes when it is defined: set before any test module imports trainers.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def avila_dir() -> Path | None:
    env = os.environ.get("DROSWEEP_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "avila")
    for folder in candidates:
        if (folder / "avila-tr.txt").is_file() and (folder / "avila-ts.txt").is_file():
            return folder
    return None


@pytest.fixture(scope="session")
def avila_data_dir() -> Path:
    folder = avila_dir()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("Avila data not found: set DROSWEEP_DATA_DIR (CI must not skip data tests)")
        pytest.skip("Avila data not found: set DROSWEEP_DATA_DIR or run `drosweep data fetch`")
    return folder


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Small tensors: one thread is as fast, and immune to cores shared with other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
