"""`drosweep demo`: missing data is explained; the whole chain runs on a tiny synthetic study."""

from __future__ import annotations

from pathlib import Path

import pytest

from drosweep.cli import main


def test_missing_data_says_how_to_get_it(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--root", str(tmp_path / "root"), "--data-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and "drosweep data fetch" in err and str(tmp_path / "none") in err
    assert not (tmp_path / "root").exists()


def test_demo_chain_on_a_tiny_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "tiny.toml"
    study.write_text('name = "tiny"\nroot = "unused"\ndataset = "synthetic"\n'
                     'methods = ["regular", "robust"]\nradii = [0.1]\ntrials = 2\n'
                     '[training]\nepochs = 1\nhidden = 16\nn_base = 8\n'
                     '[cluster]\ngpus_per_node = 0\ngpus_per_task = 0\ndevice = "cpu"\n'
                     'max_pack = 4\n')
    root = tmp_path / "root"
    code = main(["demo", "--root", str(root), "--study", str(study), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[1/3]" in out and "[3/3]" in out and f"report: {root / 'report.md'}" in out
    assert (root / "results" / "metrics.parquet").is_file()
    assert (root / "figures" / "pgd_accuracy.png").is_file()
    assert "claims" in (root / "report.md").read_text().lower()
