"""Reduction on the real local SLURM: the reduce-and-report job chained after a study's arrays
(`chain_reduce`, a pickled function the job imports by name), then `drosweep reduce --executor
slurm` as a job array giving the same rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from slurm_helpers import job_state, run, wait_for

from cluster.ledger import read as read_ledger
from drosweep.cli import main
from jobs import Paths, Study, expand, load_study

pytestmark = pytest.mark.slurm

QUICK_EVALUATION = ("[evaluation]\ntest_subset = 60\nball_samples = 40\nmean_samples = 20\n"
                    "pgd_steps = 3\nga_population = 6\nga_generations = 3\nga_elite = 1\n")
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


def chained_study(make_study: Callable[..., Study]) -> Study:
    study = make_study(methods=("regular", "robust"), radii=(0.05,), trials=1, epochs=2,
                       training="n_base = 16\ntemp_steps = 5")
    path = Path(str(study.source))
    path.write_text("chain_reduce = true\n" + study.text + QUICK_EVALUATION)
    return load_study(path)


def logs_of(paths: Paths, job_id: str) -> str:
    return "\n".join(f.read_text(errors="replace") for f in sorted((paths.logs / job_id).glob("*"))
                     if f.is_file() and f.suffix in (".out", ".err"))


def test_chained_reduce_then_reduce_as_an_array(make_study: Callable[..., Study],
                                                 capsys: Any) -> None:
    study = chained_study(make_study)
    paths = Paths(study.root)
    assert main(["submit", str(study.source), "--executor", "slurm", "--no-progress"]) == 0
    assert "reduces and reports once the arrays have ended" in capsys.readouterr().out
    (chained,) = [s.array_id for s in read_ledger(paths.ledger) if s.reason == "then"]
    wait_for(lambda: job_state(chained) in ENDED, 600, 2.0, "the chained job")
    assert job_state(chained) == "COMPLETED", logs_of(paths, chained)
    assert paths.report.is_file() and (paths.figures / "pgd_accuracy.png").is_file()
    log = logs_of(paths, chained)
    assert "2 model(s) evaluated" in log and f"report: {paths.report}" in log
    chained_rows = pd.read_parquet(paths.metrics_parquet)
    assert sorted(chained_rows["key"].unique()) == sorted(t.key for t in expand(study))

    paths.metrics_parquet.unlink()
    try:
        assert main(["reduce", str(study.source), "--executor", "slurm", "--models-per-task",
                     "1", "--no-progress"]) == 0
    finally:
        run(["scancel", "--name", f"drosweep-reduce-{study.name}"])
    assert "2 model(s) evaluated" in capsys.readouterr().out
    arrayed = pd.read_parquet(paths.metrics_parquet)
    cols = ["key", "radius", "metric", "value", "model_sha256"]
    pd.testing.assert_frame_equal(
        arrayed[cols].sort_values(cols[:3]).reset_index(drop=True),
        chained_rows[cols].sort_values(cols[:3]).reset_index(drop=True))
