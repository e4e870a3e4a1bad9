"""A loaded data set as tensors (`Dataset`) and what every data set's loader builds it with.

Torch-free on import, as the registry: torch and numpy are imported when a function runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import Tensor


class DataError(InputError, RuntimeError):
    """The data set is missing or is not what it claims to be; the message says how to fix it."""


@dataclass(frozen=True)
class Dataset:
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                       self.y_test.to(device), self.classes)


def from_arrays(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                classes: tuple[str, ...], dtype: torch.dtype | None = None) -> Dataset:
    """Features standardized with the training set's mean and std (as Avila's), as tensors
    (float32 unless `dtype` says otherwise)."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    return Dataset(torch.as_tensor((x_train - mean) / std, dtype=dtype),
                   torch.as_tensor(y_train, dtype=torch.int64),
                   torch.as_tensor((x_test - mean) / std, dtype=dtype),
                   torch.as_tensor(y_test, dtype=torch.int64), classes)


def check_subset(n: int | None, rows: int) -> None:
    """A train subset larger than the data is an error naming both numbers."""
    if n is not None and n > rows:
        raise DataError(f"train_subset asks for {n:,} training rows, but the data set has "
                        f"{rows:,}")


def subset_train(data: Dataset, n: int | None, seed: int) -> Dataset:
    """The first n training rows after a seeded shuffle (test set untouched); more rows than the
    data has is an error naming both numbers."""
    import torch

    check_subset(n, len(data.y_train))
    if n is None or n == len(data.y_train):
        return data
    idx = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))[:n]
    return Dataset(data.x_train[idx], data.y_train[idx], data.x_test, data.y_test, data.classes)


__all__ = ["DataError", "Dataset", "check_subset", "from_arrays", "subset_train"]
