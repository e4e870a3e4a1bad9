"""A loaded data set as tensors (`Dataset`) and what every data set's loader builds it with.

Torch-free on import, as the registry: torch and numpy are imported when a function runs.
"""

from __future__ import annotations

import dataclasses
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
class Scaling:
    """How a raw row becomes a model input: the kept columns, in input order, each standardized
    with the training set's mean and std. Exported with every model (jobs/export.py), so a user
    can feed raw rows; a std of 0 is taken as 1."""

    columns: tuple[str, ...]    # a raw row's feature columns, in file order
    features: tuple[str, ...]   # those the model reads (after dropping), in input order
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @staticmethod
    def identity(n: int) -> Scaling:
        """A set whose rows are fed as they are (generated or already scaled)."""
        names = tuple(f"x{i}" for i in range(n))
        return Scaling(names, names, (0.0,) * n, (1.0,) * n)


@dataclass(frozen=True)
class Dataset:
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[str, ...]
    scaling: Scaling | None = None   # None: rows are fed unscaled (`Scaling.identity`)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> Dataset:
        return dataclasses.replace(self, x_train=self.x_train.to(device),
                                   y_train=self.y_train.to(device), x_test=self.x_test.to(device),
                                   y_test=self.y_test.to(device))

    @property
    def input_scaling(self) -> Scaling:
        return self.scaling if self.scaling is not None else Scaling.identity(self.n_features)


def standardize(x_train: np.ndarray, x_test: np.ndarray, features: tuple[str, ...],
                columns: tuple[str, ...] | None = None
                ) -> tuple[np.ndarray, np.ndarray, Scaling]:
    """Both splits standardized with the training set's mean and std (a constant column's std is
    taken as 1), and the `Scaling` that does it to a raw row."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    scaling = Scaling(columns if columns is not None else features, features,
                      tuple(float(v) for v in mean), tuple(float(v) for v in std))
    return (x_train - mean) / std, (x_test - mean) / std, scaling


def from_arrays(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                classes: tuple[str, ...], dtype: torch.dtype | None = None,
                features: tuple[str, ...] | None = None) -> Dataset:
    """Features standardized with the training set's mean and std (as Avila's), as tensors
    (float32 unless `dtype` says otherwise); `features` names the columns (default x0, x1, ...)."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    names = features if features is not None else \
        tuple(f"x{i}" for i in range(x_train.shape[1]))
    x_tr, x_ts, scaling = standardize(x_train, x_test, names)
    return Dataset(torch.as_tensor(x_tr, dtype=dtype),
                   torch.as_tensor(y_train, dtype=torch.int64),
                   torch.as_tensor(x_ts, dtype=dtype),
                   torch.as_tensor(y_test, dtype=torch.int64), classes, scaling)


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
    return dataclasses.replace(data, x_train=data.x_train[idx], y_train=data.y_train[idx])


__all__ = ["DataError", "Dataset", "Scaling", "check_subset", "from_arrays", "standardize",
           "subset_train"]
