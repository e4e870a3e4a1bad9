"""`drosweep demo`: missing data is explained; the whole chain runs on a tiny synthetic study."""

from __future__ import annotations

from pathlib import Path

import pytest

from drosweep.cli import main
from studies import write_study


def test_missing_data_says_how_to_get_it(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--root", str(tmp_path / "root"), "--data-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and "drosweep data fetch" in err and str(tmp_path / "none") in err
    assert not (tmp_path / "root").exists()


def test_demo_chain_on_a_tiny_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study(tmp_path, file="tiny.toml", root="unused", name="tiny",
                        methods=["regular", "robust"], trials=2,
                        training={"epochs": 1, "hidden": 16, "n_base": 8},
                        cluster={"gpus_per_node": 0, "gpus_per_task": 0, "device": "cpu",
                                 "max_pack": 4})
    root = tmp_path / "root"
    code = main(["demo", "--root", str(root), "--study", str(study), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[1/3]" in out and "[3/3]" in out and f"report: {root / 'report.md'}" in out
    assert (root / "results" / "metrics.parquet").is_file()
    assert (root / "figures" / "pgd_accuracy.png").is_file()
    assert "claims" in (root / "report.md").read_text().lower()


def test_demo_runs_the_smoke_then_the_moons_study(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import drosweep.cmd_reduce as cmd

    ran: list[tuple[str, Path]] = []

    def fake_demos(studies: list, data_dir: str | None, *, progress: bool) -> list:
        ran.extend((s.name, s.root) for s in studies)
        return []

    monkeypatch.setattr(cmd, "demos", fake_demos)
    assert main(["demo", "--root", str(tmp_path), "--no-progress"]) == 0
    assert ran == [("smoke", tmp_path / "smoke"), ("moons", tmp_path / "moons")]
    ran.clear()
    assert main(["demo", "--root", str(tmp_path / "one"), "--study",
                 str(cmd.MOONS_STUDY)]) == 0
    assert ran == [("moons", tmp_path / "one")]


def test_demos_say_each_study_and_their_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.stages as run
    from jobs import load_study
    from plots import Claim, RenderResult, Verdict
    from reduce import ReduceSummary

    def fake_demo(study, data_dir, *, progress, say):  # type: ignore[no-untyped-def]
        say(f"demo of {study.name}")
        claims = [Claim(Verdict.PASS, "a"), Claim(Verdict.PASS, "b"), Claim(Verdict.SKIP, "c")]
        summary = ReduceSummary(parquet=Path("t.parquet"), csv=Path("t.csv"), rows=1,
                                evaluated=1, reused=0)
        return run.DemoResult((), summary, RenderResult([], Path("report.md"), claims))

    monkeypatch.setattr(run, "demo", fake_demo)
    repo = Path(__file__).resolve().parents[3]
    studies = [load_study(repo / "studies" / f"{n}.toml") for n in ("smoke", "moons")]
    lines: list[str] = []
    results = run.demos(studies, progress=False, say=lines.append)
    assert len(results) == 2 and all(r.ok for r in results)
    assert lines[0].startswith("== study 1 of 2: smoke") and "demo of moons" in lines
    assert "moons: claims 2 PASS, 1 SKIP; report report.md" in lines
    assert lines[-1].startswith("all 2 studies finished in")
