"""The annotated study template (`drosweep new`): every key of every table of a study file with
its default and its one-line doc, generated from the fields' declarations (common.settings), so
it cannot drift from what the reader accepts. The keys a study must give are set to a small
example; every other line is commented out and shows the default.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text
from common.settings import Declared, declared, describe
from jobs.errors import StudyError
from jobs.evaluation import EvalSettings
from jobs.overrides import toml_value
from jobs.study import ClusterProfile
from trainers.datasets import get_source, names
from trainers.spec import Method, TrainSettings

UNSET = "<unset>"   # shown for a key whose default is no value (TOML has no null)

# the top-level keys: (key, TOML value, doc); required ones are written set, the rest commented
REQUIRED_KEYS: tuple[tuple[str, str, str], ...] = (
    ("name", '"my_study"', "names the study: 1-64 letters, digits, '_', '.', '-'"),
    ("root", '"runs/my_study"', "folder of the study's runs, logs and results (relative: to the "
                                "working directory; --root overrides it)"),
    ("methods", json.dumps([m.value for m in Method]), "methods to train: "
                                                       + ", ".join(m.value for m in Method)),
    ("radii", "[0.1]", "radii eps of the L-inf ball, each > 0"),
    ("trials", "1", "trials (seeds) per method and radius"),
)
OPTIONAL_KEYS: tuple[tuple[str, str, str], ...] = (
    ("dataset", '"avila"', "the data set (`drosweep data list`)"),
    ("data_dir", UNSET, "folder of the data set's files (unset: --data-dir, $DROSWEEP_DATA_DIR "
                        "or the per-user cache)"),
    ("base_seed", "0", "every trial's seed derives from it and the trial's key"),
    ("regular_per_radius", "false", "train `regular` at every radius (false: once per trial, at radius 0)"),
    ("chain_reduce", "false", "submit queues reduce + report after the training arrays"),
)
TABLES: tuple[tuple[str, type, str], ...] = (
    ("training", TrainSettings, "how each trial trains (the paper's values)"),
    ("evaluation", EvalSettings, "how `drosweep reduce` evaluates every model (the paper's "
                                 "values)"),
    ("cluster", ClusterProfile, "where and how the tasks run"),
)


def default_toml(value: Any) -> str:
    """A default as a TOML value (UNSET for None)."""
    if value is None:
        return UNSET
    if isinstance(value, Enum):
        return toml_value(value.value)
    return toml_value(list(value) if isinstance(value, tuple) else value)


def _key(d: Declared) -> list[str]:
    return [f"# {d.rule.doc}; {describe(d)}", f"# {d.name} = {default_toml(d.default)}"]


def _data_lines() -> list[str]:
    lines = ["# [data]: the chosen data set's own settings (`seed` defaults to base_seed):"]
    for name in names():
        fields = declared(get_source(name).options)
        if fields:
            shown = ", ".join(f"{d.name} = {default_toml(d.default)}" for d in fields
                              if d.name != "seed")
            lines.append(f"#   {name}: seed, {shown}")
    return lines


def _sweep_lines() -> list[str]:
    return ["# [sweep]: training settings as more grid axes, one list of values each; every",
            "# value is a trial of its own, named in its key (robust/eps_0.1/lr_0.1/trial_0)",
            "# and in the results table's column of that setting:",
            "#   [sweep]",
            '#   "training.lr" = [0.1, 0.2]']


def template() -> str:
    """The annotated study file: parses as a valid study with every default."""
    lines = ["# A drosweep study: the grid (method x radius x trials) and its settings.",
             "# Written by `drosweep new`: every key with its default and what it does. Give",
             "# name, root, methods, radii and trials; uncomment a line to change a default.", ""]
    for key, value, doc in REQUIRED_KEYS:
        lines += [f"# {doc}", f"{key} = {value}"]
    for key, value, doc in OPTIONAL_KEYS:
        lines += [f"# {doc}", f"# {key} = {value}"]
    for table, cls, doc in TABLES:
        lines += ["", f"# {doc}", f"[{table}]"]
        for d in declared(cls):
            lines += _key(d)
    lines += ["", *_data_lines(), "", *_sweep_lines()]
    return "\n".join(lines) + "\n"


def write_template(path: Path) -> Path:
    """Write the template to `path`; an existing file is refused, never overwritten."""
    if path.exists() or path.is_symlink():
        raise StudyError(f"{path}: already exists; `drosweep new` never overwrites a file "
                         f"(give a new name)")
    atomic_write_text(path, template())
    return path
