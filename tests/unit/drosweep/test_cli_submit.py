"""`submit --dry-run` prints the exact sbatch scripts; submit/resume of a subset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import submitit.core.utils
from fake_scheduler import FAKE, FakeScheduler

from cluster.executors.slurm import SlurmExecutor
from drosweep.cli import main
from jobs import expand, load_study
from studies import write_study


def test_dry_run_prints_the_script_sbatch_would_get(tmp_path: Path, capsys: Any,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    no_slurm_needed: None) -> None:
    f = write_study(tmp_path, **FAKE)
    monkeypatch.setattr(SlurmExecutor, "check", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "cluster_info", lambda self: None)  # no real cluster read
    assert main(["submit", str(f), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "root").exists()  # nothing written
    printed = out.split("sbatch script ----\n", 1)[1].strip()
    assert "#SBATCH --array=0-3%4" in printed and "#SBATCH --job-name=drosweep-fake" in printed

    # what submitit hands to sbatch, captured at the sbatch call
    seen: list[str] = []

    class FakeSbatch:
        def __init__(self, command: list[str], **kwargs: Any) -> None:
            self.command = command

        def __call__(self) -> str:
            assert Path(self.command[0]).name == "sbatch"
            seen.append(Path(self.command[-1]).read_text())
            return "Submitted batch job 4242\n"

    monkeypatch.setattr(submitit.core.utils, "CommandFunction", FakeSbatch)
    assert main(["submit", str(f)]) == 0
    assert len(seen) == 1
    assert seen[0].strip() == printed


def test_submit_and_resume_a_subset(tmp_path: Path, fake: FakeScheduler,
                                    capsys: Any) -> None:
    f = write_study(tmp_path, **FAKE)
    assert main(["submit", str(f), "--method", "robust", "-n", "2"]) == 0
    assert fake.keys() == ["robust/eps_0.1/trial_0", "robust/eps_0.1/trial_1"]
    assert main(["resume", str(f), "--trials", "2", "--dry-run"]) == 0
    assert "would submit 2 trial(s)" in capsys.readouterr().out  # regular and robust trial 2
    assert main(["resume", str(f), "--radius", "0", "--trials", "0-1"]) == 0
    assert fake.keys() == ["regular/eps_0/trial_0", "regular/eps_0/trial_1"]
    all_keys = {t.key for t in expand(load_study(f))}
    assert main(["resume", str(f)]) == 0
    assert set(fake.keys()) == all_keys - {k for i in range(2) for k in fake.keys(i)}


@pytest.mark.parametrize("argv, message", [
    (["--radius", "0.2"], "radius 0.2 is not in study fake"),
    (["-n", "0"], "-n must be >= 1"),
    (["--trials", "3"], "not within the study's trials 0-2"),
])
def test_bad_subset_is_refused_before_anything(tmp_path: Path, fake: FakeScheduler,
                                               capsys: Any, argv: list[str],
                                               message: str) -> None:
    f = write_study(tmp_path, **FAKE)
    assert main(["submit", str(f), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert fake.submitted == [] and not (tmp_path / "root").exists()


def test_submit_json(tmp_path: Path, fake: FakeScheduler, capsys: Any) -> None:
    f = write_study(tmp_path, **FAKE)
    assert main(["submit", str(f), "--dry-run", "--json", "-n", "3"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["dry_run"] and len(body["trials"]) == 3 and body["plan"]["tasks"] == 2
    assert len(body["scripts"]) == 1 and "#SBATCH --array=0-1%2" in body["scripts"][0]
    assert main(["submit", str(f), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["array_ids"] == ["100"] and len(body["job_ids"]) == 4
