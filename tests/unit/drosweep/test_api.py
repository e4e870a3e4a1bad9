"""The Python API: a real local run of a tiny study, from loading to the results table."""

from __future__ import annotations

from pathlib import Path

import pytest

import drosweep

REPO = Path(__file__).resolve().parents[3]
TINY = ["training.epochs=1", "training.train_subset=60", "trials=2", "radii=[0.05]",
        "methods=[\"regular\"]", "evaluation.test_subset=50", "evaluation.ball_samples=10",
        "evaluation.mean_samples=10", "evaluation.pgd_steps=2", "evaluation.lipschitz=false"]


def test_load_plan_submit_status_results(tmp_path: Path, avila_data_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROSWEEP_DATA_DIR", str(avila_data_dir))
    study = drosweep.load(REPO / "studies" / "smoke.toml", overrides=TINY, root=tmp_path)
    assert study.trials == 2
    the_plan = drosweep.plan(study, executor="local")
    assert sum(len(t.trials) for t in the_plan.tasks) == 2
    result = drosweep.submit(study, executor="local")
    assert result is not None
    status = drosweep.status(study)
    assert {t.state.value for t in status.trials} == {"done"} and len(status.trials) == 2
    from drosweep.cli import main

    assert main(["reduce", str(REPO / "studies" / "smoke.toml"), "--root", str(tmp_path),
                 *[a for s in TINY for a in ("--set", s)]]) == 0
    df = drosweep.results(study)
    assert set(df["method"]) == {"regular"} and len(df) > 0


def test_import_is_light() -> None:
    """`import drosweep` (the CLI's first import) and the settings (which every light command
    reads: status, logs, plan) load no torch: the API loads on first use."""
    import subprocess
    import sys

    code = "import sys, drosweep, trainers.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        drosweep.nope  # type: ignore[attr-defined]  # noqa: B018
