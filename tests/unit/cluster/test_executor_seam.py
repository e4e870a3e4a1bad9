"""The executor seam holds: outside cluster/executors/ no code tests an executor's name (it asks
the executor), the thing has one word in the code (no "backend"), and submitit's private names
are used in one adapter module only, whose names the installed submitit still has."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from cluster.executors import EXECUTORS
from cluster.executors.submitit_api import PRIVATE_NAMES

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("drosweep", "pipeline", "cluster", "reduce", "plots", "jobs", "trainers", "common")
EXECUTORS_DIR = REPO / "cluster" / "executors"
ADAPTER = EXECUTORS_DIR / "submitit_api.py"


def name_tests(text: str, names: tuple[str, ...]) -> list[str]:
    """The lines of `text` that compare something with an executor's name (`== "slurm"`,
    `"local" !=`, `in ("local", "debug")`, `match`/`case "slurm"`)."""
    quoted = "|".join(re.escape(n) for n in names)
    pattern = re.compile(rf"""(==|!=)\s*["']({quoted})["']|["']({quoted})["']\s*(==|!=)"""
                         rf"""|\bin\s*[(\[{{][^)\]}}]*["']({quoted})["']|case\s+["']({quoted})["']""")
    return [line.strip() for line in text.splitlines() if pattern.search(line)]


def sources(outside: Path | None = None) -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    return [p for p in files if outside is None or outside not in p.parents]


def test_no_executor_name_is_tested_outside_the_executors() -> None:
    names = EXECUTORS
    found = [f"{p.relative_to(REPO)}: {line}" for p in sources(outside=EXECUTORS_DIR)
             for line in name_tests(p.read_text(encoding="utf-8"), names)]
    assert not found, "ask the executor instead of testing its name:\n" + "\n".join(found)


@pytest.mark.parametrize(("line", "hit"), [
    ('if executor == "slurm":', True),
    ("if record[0].executor != 'local':", True),
    ('if "debug" == name:', True),
    ('if executor in ("local", "debug"):', True),
    ('    case "slurm":', True),
    ('p.add_argument("--executor", default="slurm")', False),
    ('get_executor("slurm", study, paths)', False),
])
def test_the_check_finds_a_name_test(line: str, hit: bool) -> None:
    assert bool(name_tests(line, ("slurm", "local", "debug"))) is hit


def test_private_submitit_names_only_in_the_adapter() -> None:
    private = sorted({attr for _, attr in PRIVATE_NAMES})
    pattern = re.compile(r"\.(" + "|".join(re.escape(a) for a in private) + r")\b"
                         r"|[\"'](" + "|".join(re.escape(a) for a in private) + r")[\"']")
    found = [f"{p.relative_to(REPO)}: {line.strip()}" for p in sources() if p != ADAPTER
             for line in p.read_text(encoding="utf-8").splitlines() if pattern.search(line)]
    assert not found, "submitit's private names outside cluster/executors/submitit_api.py:\n" \
        + "\n".join(found)


@pytest.mark.parametrize(("owner", "attr"), PRIVATE_NAMES)
def test_submitit_still_has_the_private_names_we_use(owner: str, attr: str) -> None:
    module, _, name = owner.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if hasattr(cls, attr):
        return
    # an instance attribute: set by the constructor
    assert f"self.{attr} =" in inspect.getsource(cls.__init__), \
        f"{owner}.{attr} is gone: update cluster/executors/submitit_api.py"


def test_the_adapter_renders_a_script_and_finds_a_local_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    import submitit
    from submitit.local.local import LocalJob

    from cluster.executors.submitit_api import job_process, sbatch_script

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    assert job_process(LocalJob(tmp_path, "1", process=process)) is process
    process.wait()
    assert job_process(object()) is None

    class Executor(submitit.SlurmExecutor):
        def __init__(self) -> None:  # no srun needed to render a script
            submitit.core.core.PicklingExecutor.__init__(self, tmp_path / "%j")
            self.python = sys.executable

    script = sbatch_script(Executor())
    assert script.startswith("#!/bin/bash") and "submitit.core._submit" in script


# torch's and matplotlib's own modules, and the CUDA-graph capture's parameter (trainers/graphs.py)
OTHERS_BACKENDS = re.compile(r"torch\.backends|matplotlib\.backends|backend_agg|`?capture`? backend"
                             r"|backend: Capture|backend\.capture")


def test_one_word_for_the_executor() -> None:
    """What runs a study's tasks is an "executor" everywhere (the CLI's `--executor`, the registry,
    the classes), never also a "backend"."""
    found = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in sources()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if "backend" in line.lower() and not OTHERS_BACKENDS.search(line)]
    assert not found, "call it an executor:\n" + "\n".join(found)
