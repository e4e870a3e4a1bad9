"""Evaluation work in picklable pieces: one `EvalTask` runs anywhere (in-process, a local
process, a SLURM array element) and returns plain row dicts; it never writes the table itself."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import torch
from tqdm import tqdm

from jobs.evaluation import EvalSettings
from reduce.errors import ModelFileError
from reduce.evaluate import evaluate_model, select_test_points
from reduce.model_file import load_model
from reduce.table import FORMAT, axis_column, error_rows, rows_for
from trainers.data import Dataset, load_dataset
from trainers.datasets import DataOptions
from trainers.device import pin_precision, resolve_device


@dataclass(frozen=True)
class EvalUnit:
    """One trained model and the radii to evaluate it at."""

    key: str
    method: str
    trial: int
    trained_radius: float
    radii: tuple[float, ...]
    model_path: str
    model_sha256: str  # from the DONE marker: the file must still match it
    axes: tuple[tuple[str, object], ...] = ()  # its swept settings' values (jobs.grid.TrialSpec)


@dataclass(frozen=True)
class EvalTask:
    units: tuple[EvalUnit, ...]
    settings: EvalSettings
    dataset: str
    data_dir: str | None
    device: str
    study: str
    study_fingerprint: str
    data_options: DataOptions = field(default_factory=DataOptions)


Row = dict[str, object]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=2)
def _test_set(dataset: str, data_dir: str | None, options: DataOptions) -> Dataset:
    """Parsed once per process: in-process reductions run one task per model."""
    return load_dataset(dataset, data_dir, options=options)


def run_eval_task(task: EvalTask, progress: bool = False,
                  on_unit: Callable[[EvalUnit, list[Row]], None] | None = None) -> list[Row]:
    """Evaluate every unit; a unit that fails yields `reduce_error` rows, the rest go on."""
    dev = resolve_device(task.device)
    pin_precision(task.settings.allow_tf32_override)
    data = _test_set(task.dataset, task.data_dir, task.data_options)
    x, y = select_test_points(data.x_test, data.y_test, task.settings)
    x, y = x.to(dev), y.to(dev)
    rows: list[Row] = []
    bar = tqdm(task.units, desc="evaluating", unit="model", disable=not progress,
               dynamic_ncols=True)
    for unit in bar:
        bar.set_postfix_str(unit.key, refresh=False)
        unit_rows = _evaluate_unit(unit, task, x, y, data.n_features, data.n_classes, dev)
        rows.extend(unit_rows)
        if on_unit is not None:
            on_unit(unit, unit_rows)
    return rows


def unit_base(unit: EvalUnit, task: EvalTask, device: str) -> Row:
    """The columns every row of one model shares."""
    return {"method": unit.method, "trial": unit.trial, "key": unit.key,
            "trained_radius": unit.trained_radius, "model_sha256": unit.model_sha256,
            "settings_hash": task.settings.digest, "settings": task.settings.to_json(),
            "failed_training": False, "study": task.study,
            "study_fingerprint": task.study_fingerprint, "format": FORMAT, "device": device,
            "evaluated_at": _now(), **{axis_column(k): v for k, v in unit.axes}}


def _evaluate_unit(unit: EvalUnit, task: EvalTask, x: torch.Tensor, y: torch.Tensor,
                   n_in: int, n_out: int, dev: torch.device) -> list[Row]:
    base = unit_base(unit, task, dev.type)
    try:
        model = load_model(unit.model_path, n_in, n_out, dev, expected_sha256=unit.model_sha256)
        result = evaluate_model(model, x, y, unit.radii, task.settings, unit.key)
        return rows_for(result.metrics, base)
    except ModelFileError as exc:
        return error_rows(unit.radii, base, str(exc))
    except Exception as exc:  # one model's failure must not stop the reduction of the others
        return error_rows(unit.radii, base, f"{type(exc).__name__}: {exc}")
