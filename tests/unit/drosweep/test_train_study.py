"""`drosweep train STUDY KEY`: one trial of a study, trained as its task trains it (same bits),
with the planner's estimate printed first; a key not in the study is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cluster import calibration
from cluster.executors.blocking import local_device_model
from cluster.plan_context import context
from cluster.planner import plan
from drosweep.cli import main
from drosweep.render import duration
from jobs import Paths, expand, load_study
from studies import write_study
from trainers.spec import Method

KEY = "robust/eps_0.1/trial_1"


def _study(tmp_path: Path) -> Path:
    """A two-trial robust study whose calibration holds a rate for this machine's CPU (1
    thread, the study's cpus_per_task): 150 s a step, so the estimate is the calibration's."""
    cal = tmp_path / "cal.json"
    calibration.save(cal, local_device_model("cpu", 1),
                     [calibration.Rate(Method.ROBUST, 0.1, 1, 150.0)], created="now",
                     versions={})
    return write_study(tmp_path, name="one", methods=["robust"], trials=2,
                       training={"epochs": 1, "max_steps": 4, "batch_size": 20, "n_base": 8},
                       cluster={"cpus_per_task": 1, "calibration": str(cal)})


def test_a_study_trial_trains_the_bits_of_its_task(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    f = _study(tmp_path)
    alone = tmp_path / "alone"
    argv = ["train", str(f), KEY, "-s", str(alone), "-d", "cpu", "--no-progress",
            "--set", "training.max_steps=3"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    # the estimate comes first, and it is the planner's for the same study on this machine
    study = load_study(f, overrides=["training.max_steps=3"])
    ctx = context(study, "local", device="cpu")
    group = plan(expand(study), ctx.profile, ctx.rates).groups[0]
    model = local_device_model("cpu", 1)
    assert out[0] == (f"estimate: ~{duration(group.hours_per_trial * 3600)} (3 steps) on "
                      f"{model}, from calibration (1 rate)"), out
    assert out[0].startswith("estimate: ~7.5 min (3 steps)")  # 3 steps x 150 s
    assert "3 steps" in out[-1]
    # the study's own run of the same trial (packed with trial_0) gives the same weights
    assert main(["submit", str(f), "--executor", "debug", "--device", "cpu", "--no-progress",
                 "--set", "training.max_steps=3"]) == 0
    mine = torch.load(alone / "eps_0.1_trial_1.pt", weights_only=True)
    theirs = torch.load(Paths(study.root).model(KEY), weights_only=True)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


@pytest.mark.parametrize(("extra", "message"), [
    (["robust/eps_0.2/trial_0"], "trial 'robust/eps_0.2/trial_0' is not in study one"),
    (["robust/eps_0.1/trial_9"], "trial 'robust/eps_0.1/trial_9' is not in study one"),
    (["robust/eps_.1/trial_0"], "invalid trial key"),
    ([], "which trial of"),
    ([KEY, "--epochs", "3"], "--epochs: a study's trial takes its method, radius, seed"),
    ([KEY, "-t", "regular"], "-t: a study's trial takes"),
    ([KEY, "--set", "training.epochs=0"], "'epochs' must be a positive integer"),
])
def test_a_bad_study_trial_is_one_line(extra: list[str], message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    f = _study(tmp_path)
    out = tmp_path / "out"
    assert main(["train", str(f), *extra, "-s", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists() and not (tmp_path / "root").exists()


def test_the_flag_form_needs_its_flags(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "-t", "regular", "-s", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "required: -r/--radius, -i/--id" in err[0], err


def test_the_flag_form_estimates_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a study: a --calibration for this device is used; without one, the built-in
    guess says what it assumes and how to measure."""
    argv = ["train", "-t", "regular", "-r", "0", "-i", "0", "--dataset", "synthetic",
            "--max-steps", "2", "--no-progress"]
    assert main([*argv, "-s", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(("estimate: <1 s (2 steps) on ", "estimate: ~0 s (2 steps) on "))
    assert "from built-in (assumes 15 " \
        "TFLOP/s; `drosweep doctor --out FILE` measures this device" in first, first
    cal = tmp_path / "cal.json"
    calibration.save(cal, local_device_model("cpu"), [calibration.Rate(Method.REGULAR, 0.0, 1,
                                                                       60.0)],
                     created="now", versions={})
    assert main([*argv, "-s", str(tmp_path / "b"), "--calibration", str(cal)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"estimate: ~2.0 min (2 steps) on {local_device_model('cpu')}, from " \
        f"calibration (1 rate)", first
