"""Data sets behind one interface: a registry of named sources (`avila`, `grid`, `csv`, ...).

A study names its data set with `dataset = "<name>"` and gives that set's own settings in a
`[data]` table; both are checked when the study loads (unknown keys and bad values are one-line
errors). Everything downstream asks the registry, never a constant: the model's input and output
sizes, the cost model's rows, the evaluation, and the "is the data there" check of a submission
(`DataSource.verify`).

To add a data set, write a module in this package that
1. declares its settings, if any, as a frozen dataclass subclassing `DataOptions` (fields with
   defaults; a field `seed` gets the study's base_seed; `validate()` raises DataError naming
   `data.<field>`);
2. writes `load(options, folder) -> datasets.base.Dataset` (standardized float32 tensors, e.g.
   by `datasets.base.from_arrays`; import torch and numpy inside the function, so that planning
   stays torch-free), checking what it reads;
3. calls `register(DataSource(name=..., description=..., load=..., options=..., ...))` with the
   fixed counts it has (features, classes, rows) or `sizes(options) -> Shape` where they depend
   on the settings, its fixed `files` (with sha256 where known) and `fetch(folder)` when
   `drosweep data fetch <name>` can download it;
and import the module below. The tests of `tests/unit/trainers/test_datasets*.py` show the full path a new
data set has to pass (plan, local submit, reduce).
"""

from trainers.datasets.registry import (
    ENV_DATA_DIR,
    DataError,
    DataFile,
    DataOptions,
    DataSource,
    Shape,
    default_cache_dir,
    get_source,
    names,
    parse_options,
    register,
    resolve_data_dir,
)

# the built-in data sets register themselves on import
from trainers.datasets import (  # noqa: F401  isort: skip
    avila, grid, mnist, synthetic, toys, user_table)

__all__ = ["ENV_DATA_DIR", "DataError", "DataFile", "DataOptions", "DataSource", "Shape",
           "default_cache_dir", "get_source", "names", "parse_options", "register",
           "resolve_data_dir"]
