"""The one way tests write a study file: `write_study(tmp_path, methods=..., radii=..., ...)`.

Small by default (synthetic data, one regular trial, root `tmp_path/root`); each table is a dict
of settings (`sweep` too: `{"training.lr": [0.1, 0.2]}`), written as TOML by the project's own
writer (jobs/overrides.py), so a test names only what it is about. `extra` appends raw TOML text
for the tests about malformed or odd files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jobs.overrides import dump_toml


def study_text(root: Path | str, *, name: str = "s", dataset: str | None = "synthetic",
               methods: Sequence[str] = ("regular",), radii: Sequence[float] = (0.1,),
               trials: int = 1, training: Mapping[str, Any] | None = None,
               sweep: Mapping[str, Any] | None = None,
               cluster: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None,
               evaluation: Mapping[str, Any] | None = None, extra: str = "",
               **top: Any) -> str:
    """A study file's text; `top` adds top-level keys (base_seed, data_dir, ...)."""
    body: dict[str, Any] = {"name": name, "root": str(root)}
    if dataset is not None:
        body["dataset"] = dataset
    body.update(methods=list(methods), radii=list(radii), trials=trials, **top)
    for table, values in (("training", training), ("sweep", sweep), ("cluster", cluster),
                          ("data", data), ("evaluation", evaluation)):
        if values is not None:
            body[table] = dict(values)
    return dump_toml(body) + extra


def write_study(tmp_path: Path, *, file: str = "study.toml", root: Path | str | None = None,
                **settings: Any) -> Path:
    """Write `study_text(...)` to `tmp_path/file` (root: `tmp_path/root`); returns the file."""
    path = tmp_path / file
    path.write_text(study_text(tmp_path / "root" if root is None else root, **settings))
    return path
