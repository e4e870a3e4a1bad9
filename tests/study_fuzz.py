"""The fuzzed study (every key of every table, one at a time changed to a value of VALUES) and the
CLI call the fuzz tests share."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from drosweep.cli import main
from jobs.evaluation import EvalSettings
from jobs.study import ClusterProfile
from trainers.spec import TrainSettings

# the fuzzed study: study_text(root, **FZ), one key at a time changed by `_with`
FZ: dict[str, Any] = {"name": "fz", "methods": ["regular", "robust"], "radii": [0.05],
                      "trials": 2, "training": {"epochs": 1, "hidden": 16, "max_steps": 2},
                      "cluster": {"max_pack": 2, "gpus_per_task": 0},
                      "evaluation": {"test_subset": 50}}


VALUES = ["0", "-1", "1", "3", "10000000", "9223372036854775807", "1e308", "-1e308", "nan",
          "inf", "-inf", "0.0", "0.5", "1e-300", '"x"', '""', '"%j"', '"a\\nb"', "true",
          "false", "[]", "[1, 2]", '["a"]', "[1e308]", "[100.0]", "[5]", "[0.1, 0.1]", "{}",
          "{ a = 1 }", "1979-05-27", '"\\u0000"', '"regular"', '["regular"]', "[[1]]",
          '"auto"', '"cpu"', "-0.0", "1e3", "16385"]


def _keys() -> list[tuple[str | None, str]]:
    top = ["name", "root", "dataset", "data_dir", "methods", "radii", "trials", "base_seed",
           "regular_per_radius", "chain_reduce", "unknown_key"]
    out: list[tuple[str | None, str]] = [(None, k) for k in top]
    out += [("training", f.name) for f in dataclasses.fields(TrainSettings)]
    out += [("cluster", f.name) for f in dataclasses.fields(ClusterProfile)]
    out += [("evaluation", f.name) for f in dataclasses.fields(EvalSettings)]
    return out


def _with(text: str, table: str | None, key: str, value: str) -> str:
    """`text` with `table.key = value` set (replaced when present, added otherwise)."""
    lines = text.splitlines()
    section = None
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[]")
        elif section == table and line.split(" = ")[0] == key:
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    if table is None:
        return f"{key} = {value}\n" + text
    at = lines.index(f"[{table}]")
    lines.insert(at + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err
