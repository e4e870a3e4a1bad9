"""Data sets as tensors: UCI Avila (the paper's), a small synthetic one for fast tests, and the
common helpers; which data sets exist, and their facts, is the registry's (trainers.datasets).

Avila is read in the UCI text format (no header; a header row is tolerated), features F6 and F10
(zero-based columns 5 and 9) are dropped, the rest standardized with training-set statistics, and
the 12 copyists mapped to labels 0..11 in sorted order A..Y. Every load is verified (rows, classes),
so a wrong or truncated file fails with the file and the problem named, not with a silent mis-fit.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from trainers.datasets import DataError, DataOptions, get_source, resolve_data_dir
from trainers.datasets.avila import (
    AVILA_CLASSES,
    AVILA_FILES,
    AVILA_ROWS,
    AVILA_SHA256,
    AVILA_TRAIN_CLASS_COUNTS,
    AVILA_URL,
    DROPPED_COLUMNS,
)
from trainers.datasets.install import download, install_verified
from trainers.datasets.registry import ENV_DATA_DIR, default_cache_dir

__all__ = ["AVILA_CLASSES", "AVILA_FILES", "AVILA_ROWS", "AVILA_SHA256", "AVILA_TRAIN_CLASS_COUNTS",
           "AVILA_URL", "DROPPED_COLUMNS", "ENV_DATA_DIR", "DataError", "Dataset", "check_subset",
           "default_cache_dir", "fetch_avila", "from_arrays", "install_avila_zip", "load_avila",
           "load_dataset", "make_synthetic", "resolve_data_dir", "subset_train"]


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


def _read_avila_file(path: Path, expected_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; get the data with `drosweep data fetch` "
                        f"or point --data-dir / ${ENV_DATA_DIR} at a folder holding {path.name}")
    feats: list[list[float]] = []
    labels: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 11:
                raise DataError(f"{path}:{lineno}: expected 10 features and a class letter "
                                f"(11 comma-separated fields), found {len(parts)}")
            try:
                row = [float(p) for p in parts[:10]]
            except ValueError:
                if lineno == 1 and not feats:  # a header row, as some copies add
                    continue
                raise DataError(f"{path}:{lineno}: non-numeric feature in {line[:60]!r}") from None
            if parts[10] not in AVILA_CLASSES:
                raise DataError(f"{path}:{lineno}: unknown class {parts[10]!r}; "
                                f"Avila has {', '.join(AVILA_CLASSES)}")
            feats.append(row)
            labels.append(parts[10])
    if len(feats) != expected_rows:
        raise DataError(f"{path}: {len(feats)} data rows, expected {expected_rows} "
                        f"(not the UCI Avila file, or truncated)")
    x = np.asarray(feats, dtype=np.float64)
    y = np.asarray([AVILA_CLASSES.index(c) for c in labels], dtype=np.int64)
    return x, y


def load_avila(data_dir: str | os.PathLike[str] | None = None,
               dtype: torch.dtype = torch.float32) -> Dataset:
    folder = resolve_data_dir(data_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: Avila data folder not found; run `drosweep data fetch` "
                        f"(or `drosweep data fetch --dest DIR` and pass --data-dir DIR / "
                        f"set ${ENV_DATA_DIR})")
    x_tr, y_tr = _read_avila_file(folder / AVILA_FILES["train"], AVILA_ROWS["train"])
    x_ts, y_ts = _read_avila_file(folder / AVILA_FILES["test"], AVILA_ROWS["test"])
    counts = {c: int((y_tr == i).sum()) for i, c in enumerate(AVILA_CLASSES)}
    if counts != AVILA_TRAIN_CLASS_COUNTS:
        raise DataError(f"{folder / AVILA_FILES['train']}: class counts {counts} differ from "
                        f"the UCI description {AVILA_TRAIN_CLASS_COUNTS}")
    if len(np.unique(y_ts)) != len(AVILA_CLASSES):
        raise DataError(f"{folder / AVILA_FILES['test']}: not all 12 classes present")
    keep = [i for i in range(10) if i not in DROPPED_COLUMNS]
    x_tr, x_ts = x_tr[:, keep], x_ts[:, keep]
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    std[std == 0] = 1.0
    x_tr, x_ts = (x_tr - mean) / std, (x_ts - mean) / std
    return Dataset(torch.as_tensor(x_tr, dtype=dtype), torch.as_tensor(y_tr),
                   torch.as_tensor(x_ts, dtype=dtype), torch.as_tensor(y_ts), AVILA_CLASSES)


def make_synthetic(n_train: int = 600, n_test: int = 600, n_features: int = 8,
                   n_classes: int = 12, seed: int = 0,
                   dtype: torch.dtype = torch.float32) -> Dataset:
    """Gaussian blobs in the Avila shape (8 features, 12 classes): trains in seconds on a CPU."""
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


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None,
                 dtype: torch.dtype = torch.float32, options: DataOptions | None = None) -> Dataset:
    """Data set `name` of the registry (trainers.datasets) with its settings, read and verified."""
    source = get_source(name)
    data = source.verify(options if options is not None else source.options(), data_dir)
    if data.x_train.dtype != dtype:
        data = Dataset(data.x_train.to(dtype), data.y_train, data.x_test.to(dtype), data.y_test,
                       data.classes)
    return data


def from_arrays(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                classes: tuple[str, ...], dtype: torch.dtype = torch.float32) -> Dataset:
    """Features standardized with the training set's mean and std (as Avila's), as tensors."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    return Dataset(torch.as_tensor((x_train - mean) / std, dtype=dtype),
                   torch.as_tensor(y_train, dtype=torch.int64),
                   torch.as_tensor((x_test - mean) / std, dtype=dtype),
                   torch.as_tensor(y_test, dtype=torch.int64), classes)


def check_subset(n: int | None, rows: int) -> None:
    if n is not None and n > rows:
        raise DataError(f"train_subset asks for {n:,} training rows, but the data set has "
                        f"{rows:,}")


def subset_train(data: Dataset, n: int | None, seed: int) -> Dataset:
    """The first n training rows after a seeded shuffle (test set untouched); more rows than the
    data has is an error naming both numbers."""
    check_subset(n, len(data.y_train))
    if n is None or n == len(data.y_train):
        return data
    idx = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))[:n]
    return Dataset(data.x_train[idx], data.y_train[idx], data.x_test, data.y_test, data.classes)


def fetch_avila(dest: str | os.PathLike[str] | None = None, url: str = AVILA_URL,
                timeout: float = 60.0) -> Path:
    """Download avila.zip from UCI, verify both files (checksums, rows, classes), install them."""
    folder = resolve_data_dir(dest)
    payload = download(url, timeout, f"no network? copy avila-tr.txt and avila-ts.txt into "
                                     f"{folder} by hand")
    return install_avila_zip(payload, folder)


def install_avila_zip(payload: bytes, folder: Path) -> Path:
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        raise DataError("the download is not a zip archive (UCI changed the address?)") from None
    found: dict[str, bytes] = {}
    for info in archive.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base in AVILA_SHA256:
            found[base] = archive.read(info)
    missing = sorted(set(AVILA_SHA256) - set(found))
    if missing:
        raise DataError(f"avila.zip lacks {missing}")
    # verify rows and class counts (as in avila-description.txt) before touching the destination;
    # the checksums of the reference copy are reported, not enforced (line endings may differ)
    return install_verified(found, folder, load_avila, ".avila-")
