"""`synthetic`: Gaussian blobs in Avila's shape, generated in memory; for fast tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.registry import DataOptions, DataSource, register

if TYPE_CHECKING:
    from trainers.data import Dataset

SYNTHETIC_ROWS = 600


def _load(options: DataOptions, folder: Path | None) -> Dataset:
    from trainers.data import make_synthetic

    return make_synthetic(n_train=SYNTHETIC_ROWS, n_test=SYNTHETIC_ROWS)


SYNTHETIC = register(DataSource(
    name="synthetic",
    description="Gaussian blobs in Avila's shape (8 features, 12 classes), for tests",
    load=_load,
    n_features=8, n_classes=12, classes=tuple(f"c{i}" for i in range(12)),
    train_rows=SYNTHETIC_ROWS, test_rows=SYNTHETIC_ROWS, generated=True,
))
