"""`synthetic`: Gaussian blobs in Avila's shape, generated in memory; for fast tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.base import Dataset
from trainers.datasets.registry import DataOptions, DataSource, register

if TYPE_CHECKING:
    import torch
    from torch import Tensor

SYNTHETIC_ROWS = 600


def make_synthetic(n_train: int = 600, n_test: int = 600, n_features: int = 8,
                   n_classes: int = 12, seed: int = 0,
                   dtype: torch.dtype | None = None) -> Dataset:
    """Gaussian blobs in the Avila shape (8 features, 12 classes): trains in seconds on a CPU
    (float32 features unless `dtype` says otherwise)."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_classes, n_features, generator=gen, dtype=torch.float64) * 1.5

    def draw(n: int) -> tuple[Tensor, Tensor]:
        y = torch.randint(0, n_classes, (n,), generator=gen)
        x = centers[y] + 0.6 * torch.randn(n, n_features, generator=gen, dtype=torch.float64)
        return x.to(dtype), y

    x_tr, y_tr = draw(n_train)
    x_ts, y_ts = draw(n_test)
    classes = tuple(f"c{i}" for i in range(n_classes))
    return Dataset(x_tr, y_tr, x_ts, y_ts, classes)


def _load(options: DataOptions, folder: Path | None) -> Dataset:
    return make_synthetic(n_train=SYNTHETIC_ROWS, n_test=SYNTHETIC_ROWS)


SYNTHETIC = register(DataSource(
    name="synthetic",
    description="Gaussian blobs in Avila's shape (8 features, 12 classes), for tests",
    load=_load,
    n_features=8, n_classes=12, classes=tuple(f"c{i}" for i in range(12)),
    train_rows=SYNTHETIC_ROWS, test_rows=SYNTHETIC_ROWS, generated=True,
))
