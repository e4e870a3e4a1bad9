"""The registry of named data sets: what each one is, how it is loaded, fetched and verified.

Torch-free on import (the planner and the study parser read it): a source's `load` and `fetch`
import torch and numpy only when they run.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.settings import Wording, read
from trainers.datasets.base import DataError

if TYPE_CHECKING:
    from trainers.datasets.base import Dataset

ENV_DATA_DIR = "DROSWEEP_DATA_DIR"


@dataclass(frozen=True)
class DataOptions:
    """A data set's own settings: the study's `[data]` table, parsed when the study loads.

    A data set with settings subclasses this as a frozen dataclass whose fields have defaults and
    one of the types int, float, bool, str, `str | None`, `int | None` or `tuple[str, ...]`.
    A field named `seed` defaults to the study's `base_seed`; fields whose metadata has
    `path=True` are paths, made absolute (relative to the working directory) when read.
    """

    def validate(self) -> None:
        """Raise DataError naming the setting (`data.<field>`) when the values do not fit."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class Shape:
    """What the model, the cost model and the evaluation need to know of a data set."""

    n_features: int
    n_classes: int
    train_rows: int
    test_rows: int


@dataclass(frozen=True)
class DataFile:
    """A fixed file of a fetched data set; `sha256` is None where no reference hash is known."""

    name: str
    sha256: str | None = None


Loader = Callable[[Any, "Path | None"], "Dataset"]


@dataclass(frozen=True)
class DataSource:
    """One named data set. Counts that depend on the settings (toys' `n_train`, a user's table)
    are None here and come from `sizes(options)`; fixed ones are given here and are what `load`
    verifies. `load(options, folder)` gets the data folder (resolved) when the set has `files`,
    else None, and returns standardized float32 tensors."""

    name: str
    description: str
    load: Loader
    title: str = ""     # in messages ("Avila data verified ..."); default: the name
    options: type[DataOptions] = DataOptions
    n_features: int | None = None
    n_classes: int | None = None
    classes: tuple[str, ...] = ()
    train_rows: int | None = None
    test_rows: int | None = None
    files: tuple[DataFile, ...] = ()
    fetch: Callable[[Path], None] | None = None   # download and verify into a folder
    sizes: Callable[[Any], Shape] | None = None   # the shape from the settings (no torch)
    generated: bool = False   # made in memory from the settings: nothing to find or read
    citation: str = ""

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)

    @property
    def needs_fetch(self) -> bool:
        return self.fetch is not None

    @property
    def options_required(self) -> bool:
        """Whether the data set needs settings (its defaults do not validate)."""
        try:
            self.options().validate()
        except DataError:
            return True
        return False

    def shape(self, options: DataOptions) -> Shape:
        if self.sizes is not None:
            return self.sizes(options)
        fixed = (self.n_features, self.n_classes, self.train_rows, self.test_rows)
        if any(v is None for v in fixed):
            raise TypeError(f"data set {self.name!r} needs `sizes` or all four fixed counts")
        return Shape(*typing.cast(tuple[int, int, int, int], fixed))

    def missing_files(self, folder: Path) -> list[str]:
        return [f.name for f in self.files if not (folder / f.name).is_file()]

    def folder(self, data_dir: str | os.PathLike[str] | None) -> Path | None:
        """Where its files are read from (None: generated, or the settings name the files)."""
        return resolve_data_dir(data_dir, self.name) if self.files else None

    def missing(self, options: DataOptions,
                data_dir: str | os.PathLike[str] | None) -> str | None:
        """Why the data is not there (one line), or None: the cheap check (no file is read)."""
        folder = self.folder(data_dir)
        if folder is not None:
            missing = self.missing_files(folder)
            if missing:
                how = f"run `drosweep data fetch {self.name}`" if self.needs_fetch else \
                    f"copy {', '.join(missing)} there"
                return (f"data set '{self.name}' not found in {folder} (missing "
                        f"{', '.join(missing)}); set data_dir in the study, --data-dir or "
                        f"${ENV_DATA_DIR}, or {how}")
        for f in dataclasses.fields(options):
            value = getattr(options, f.name)
            if f.metadata.get("path") and value is not None and not Path(value).is_file():
                return f"key 'data.{f.name}': {value}: file not found"
        return None

    def verify(self, options: DataOptions, data_dir: str | os.PathLike[str] | None) -> Dataset:
        """Read and check the data (files present, rows, columns, classes): what a task will
        read, so a missing or wrong file is found before anything is submitted."""
        problem = self.missing(options, data_dir)
        if problem is not None:
            raise DataError(problem)
        folder = self.folder(data_dir)
        options.validate()
        data = self.load(options, folder)
        expected = self.shape(options)
        got = Shape(data.n_features, data.n_classes, len(data.y_train), len(data.y_test))
        if got != expected:
            raise DataError(f"data set '{self.name}': loaded {got}, expected {expected}")
        return data


_REGISTRY: dict[str, DataSource] = {}


def register(source: DataSource) -> DataSource:
    """Add a data set; a second one of the same name is a programming error."""
    if source.name in _REGISTRY:
        raise ValueError(f"data set {source.name!r} is registered twice")
    if not dataclasses.is_dataclass(source.options) or \
            not source.options.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"data set {source.name!r}: options must be a frozen dataclass")
    _REGISTRY[source.name] = source
    return source


def names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_source(name: str) -> DataSource:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(names())}") from None


def default_cache_dir(name: str = "avila") -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "drosweep" / name


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None, name: str = "avila") -> Path:
    """`--data-dir` (or the study's data_dir), else $DROSWEEP_DATA_DIR, else the per-user cache
    of the data set. One folder may hold the files of several data sets (their names differ)."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    return default_cache_dir(name)


# ---------------------------------------------------------------- reading the [data] settings

def option_error(key: str, message: str) -> DataError:
    """The error of one bad `[data]` setting (what `DataOptions.validate` raises)."""
    return DataError(f"key 'data.{key}': {message}")


def _wording(name: str) -> Wording:
    """How `[data]` refusals read: the key and its type; ranges are each data set's `validate`."""
    def unknown(keys: list[str], allowed: list[str]) -> str:
        return (f"key 'data.{keys[0]}': unknown setting of data set '{name}'; allowed: "
                f"{', '.join(allowed) or 'none'}")

    return Wording(error=DataError, key=lambda key: f"key 'data.{key}':", unknown=unknown,
                   text="must be a non-empty one-line string",
                   items="must be a list of non-empty strings, got {value!r}")


def parse_options(name: str, table: dict[str, Any] | None, seed: int = 0) -> DataOptions:
    """The typed settings of data set `name` from a `[data]` table (or a spec's "data" dict),
    read by the fields' types (common.settings); raises DataError (one line, naming
    `data.<key>`) on an unknown key or a bad value."""
    cls = get_source(name).options
    has_seed = any(f.name == "seed" for f in dataclasses.fields(cls))
    options: DataOptions = read(cls, table or {}, _wording(name),
                                fixed={"seed": seed} if has_seed else None)
    return options
