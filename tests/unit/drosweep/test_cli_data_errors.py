"""A user's table with a mistyped label column, or a missing one, is one line on stderr and exit
code 2 from every command that reads the data (through the CLI entry, as a user runs it); `status`
reads markers only, `plot` and `report` only the results table (before `reduce` they name it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dataset_files import write_table

from drosweep.cli import main
from studies import write_study

# the study of these tests: write_study(tmp_path, **BAD_DATA, data={...}), the table its own
BAD_DATA: dict[str, Any] = {"name": "bad-data", "dataset": "csv",
                            "training": {"epochs": 1, "hidden": 4},
                            "cluster": {"gpus_per_node": 0, "gpus_per_task": 0, "device": "cpu"}}

COMMANDS = [["plan"], ["plan", "--json"],
            ["reduce", "--partial"],
            ["submit", "--executor", "debug", "--dry-run"]]


@pytest.mark.parametrize("fault", ["mistyped label", "missing table"])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_bad_table_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          command: list[str], fault: str) -> None:
    csv = write_table(tmp_path / "table.csv", rows=40)
    if fault == "missing table":
        csv.unlink()
    label = "kindd" if fault == "mistyped label" else "kind"
    f = write_study(tmp_path, **BAD_DATA, data={"data_file": str(csv), "label_column": label,
                                                "drop_columns": ["id", "note"]})
    code = main([command[0], str(f), *command[1:]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(csv) in err
    assert ("'kindd'" in err) if fault == "mistyped label" else ("not found" in err)
    assert not (tmp_path / "root").exists()  # nothing written
    if command[0] in ("plan", "submit"):  # as submit says it: the study file, and the key
        assert err.startswith(f"drosweep {command[0]}: error: {f}: ")
        assert fault == "mistyped label" or "key 'data.data_file'" in err
