"""`csv`: the user's own table, one CSV file with a header row (or a train and a test file).

Settings (`[data]`): `data_file` split by `test_fraction` with a permutation seeded by `seed`
(default: the study's base_seed), or `train_file` + `test_file`; `label_column` (its values are
the classes, in numeric order when all are numbers, else sorted as text); `drop_columns`. Every
other column is a feature and must be numeric; features are standardized with the training rows'
statistics. Relative paths are taken from the working directory when the study is read.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.registry import (
    DataError,
    DataOptions,
    DataSource,
    Shape,
    option_error,
    register,
)
from trainers.datasets.tables import Table, read_table, sorted_classes

if TYPE_CHECKING:
    import numpy as np

    from trainers.datasets.base import Dataset

MIN_TRAIN_ROWS = 2
_PATH = {"path": True}


@dataclass(frozen=True)
class CsvOptions(DataOptions):
    data_file: str | None = field(default=None, metadata=_PATH)
    train_file: str | None = field(default=None, metadata=_PATH)
    test_file: str | None = field(default=None, metadata=_PATH)
    label_column: str | None = None
    drop_columns: tuple[str, ...] = ()
    test_fraction: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        pair = (self.train_file is not None, self.test_file is not None)
        if self.data_file is None and pair != (True, True):
            missing = "test_file" if pair[0] else "train_file" if pair[1] else "data_file"
            raise option_error(missing, "missing: data set 'csv' needs data_file, or train_file "
                                        "and test_file")
        if self.data_file is not None and any(pair):
            raise option_error("data_file", "give either data_file or train_file + test_file")
        if self.label_column is None:
            raise option_error("label_column", "missing: the column that holds the classes")
        if self.label_column in self.drop_columns:
            raise option_error("drop_columns", f"drops the label column {self.label_column!r}")
        if not 0 < self.test_fraction < 1:
            raise option_error("test_fraction", f"must be in (0, 1), got {self.test_fraction!r}")
        if self.seed < 0:
            raise option_error("seed", f"must be >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class _Split:
    """Which rows of which table train and test, and the features and classes."""

    train: Table
    test: Table
    train_rows: tuple[int, ...]
    test_rows: tuple[int, ...]
    features: tuple[str, ...]
    classes: tuple[str, ...]


def _features(table: Table, options: CsvOptions) -> tuple[str, ...]:
    assert options.label_column is not None
    for name in (options.label_column, *options.drop_columns):
        table.column(name)
    dropped = {options.label_column, *options.drop_columns}
    features = tuple(h for h in table.header if h not in dropped)
    if not features:
        raise DataError(f"{table.path}: no feature columns left (all are the label or dropped)")
    return features


def _permutation(n: int, seed: int) -> list[int]:
    import numpy as np

    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


@functools.lru_cache(maxsize=8)
def _split(options: CsvOptions, stamp: tuple[tuple[str, int, int], ...]) -> _Split:
    """Read and split once per settings and file version (`stamp`: path, size, mtime)."""
    label = options.label_column
    assert label is not None
    if options.data_file is not None:
        table = read_table(Path(options.data_file))
        features = _features(table, options)
        n = len(table.rows)
        n_test = min(n - 1, max(1, math.floor(n * options.test_fraction + 0.5)))
        order = _permutation(n, options.seed)
        train, test, train_rows, test_rows = table, table, order[n_test:], order[:n_test]
    else:
        assert options.train_file is not None and options.test_file is not None
        train, test = read_table(Path(options.train_file)), read_table(Path(options.test_file))
        features = _features(train, options)
        if _features(test, options) != features:
            raise DataError(f"{test.path}: feature columns differ from {train.path}'s "
                            f"({', '.join(features)})")
        train_rows, test_rows = list(range(len(train.rows))), list(range(len(test.rows)))
    if len(train_rows) < MIN_TRAIN_ROWS:
        raise DataError(f"{train.path}: too few rows ({len(train_rows)} to train on, at least "
                        f"{MIN_TRAIN_ROWS} needed after holding out the test rows)")
    train_labels = train.labels(label)
    classes = sorted_classes([train_labels[i] for i in train_rows])
    if len(classes) < 2:
        raise DataError(f"{train.path}: the training rows hold one class ({classes[0]!r}) of "
                        f"column {label!r}; a classifier needs at least two")
    test_labels = test.labels(label)
    for i in test_rows:
        if test_labels[i] not in classes:
            raise DataError(f"{test.path}:{test.lines[i]}: class {test_labels[i]!r} of column "
                            f"{label!r} is in the test rows only (the model cannot learn it)")
    return _Split(train, test, tuple(train_rows), tuple(test_rows), features, classes)


def _stamp(options: CsvOptions) -> tuple[tuple[str, int, int], ...]:
    out = []
    for name in (options.data_file, options.train_file, options.test_file):
        if name is None:
            continue
        try:
            st = Path(name).stat()
        except OSError:
            raise DataError(f"{name}: file not found (data set 'csv')") from None
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _split_of(options: CsvOptions) -> _Split:
    options.validate()
    return _split(options, _stamp(options))


def _sizes(options: CsvOptions) -> Shape:
    s = _split_of(options)
    return Shape(len(s.features), len(s.classes), len(s.train_rows), len(s.test_rows))


def _arrays(table: Table, rows: tuple[int, ...], s: _Split,
            label: str) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    labels = table.labels(label)
    y = np.asarray([s.classes.index(labels[i]) for i in rows], dtype=np.int64)
    return table.numbers(list(s.features), list(rows)), y


def _load(options: CsvOptions, folder: Path | None) -> Dataset:
    from trainers.datasets.base import from_arrays

    s = _split_of(options)
    assert options.label_column is not None
    x_tr, y_tr = _arrays(s.train, s.train_rows, s, options.label_column)
    x_ts, y_ts = _arrays(s.test, s.test_rows, s, options.label_column)
    return from_arrays(x_tr, y_tr, x_ts, y_ts, s.classes, features=s.features)


CSV = register(DataSource(
    name="csv",
    description="your own table: a CSV file with a header row, a label column and numeric "
                "features",
    load=_load,
    options=CsvOptions,
    sizes=_sizes,
))
