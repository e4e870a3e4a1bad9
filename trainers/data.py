"""Loading a data set by name (its reading, facts and settings: trainers/datasets/<name>.py).

The names a caller needs to load and shape a data set, kept here for the callers that import them
from this module: `Dataset`, `from_arrays` and `subset_train` (trainers/datasets/base.py), Avila's
reading (trainers/datasets/avila.py) and the synthetic blobs (trainers/datasets/synthetic.py).
"""

from __future__ import annotations

import dataclasses
import os

import torch

from trainers.datasets import ENV_DATA_DIR, DataError, DataOptions, get_source, resolve_data_dir
from trainers.datasets.avila import (
    AVILA_CLASSES,
    AVILA_FILES,
    AVILA_ROWS,
    AVILA_SHA256,
    AVILA_TRAIN_CLASS_COUNTS,
    AVILA_URL,
    DROPPED_COLUMNS,
    fetch_avila,
    install_avila_zip,
    load_avila,
)
from trainers.datasets.base import Dataset, check_subset, from_arrays, subset_train
from trainers.datasets.registry import default_cache_dir
from trainers.datasets.synthetic import make_synthetic

__all__ = ["AVILA_CLASSES", "AVILA_FILES", "AVILA_ROWS", "AVILA_SHA256", "AVILA_TRAIN_CLASS_COUNTS",
           "AVILA_URL", "DROPPED_COLUMNS", "ENV_DATA_DIR", "DataError", "Dataset", "check_subset",
           "default_cache_dir", "fetch_avila", "from_arrays", "install_avila_zip", "load_avila",
           "load_dataset", "make_synthetic", "resolve_data_dir", "subset_train"]


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None,
                 dtype: torch.dtype = torch.float32, options: DataOptions | None = None) -> Dataset:
    """Data set `name` of the registry (trainers.datasets) with its settings, read and verified."""
    source = get_source(name)
    data = source.verify(options if options is not None else source.options(), data_dir)
    if data.x_train.dtype != dtype:
        data = dataclasses.replace(data, x_train=data.x_train.to(dtype),
                                   x_test=data.x_test.to(dtype))
    return data
