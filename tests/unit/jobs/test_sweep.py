"""`[sweep]`: training settings as more grid axes — keys that name the values, settings per
trial, the same checks as the setting itself, a table column per swept setting, and a real local
run through status, reduce and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from drosweep.cli import main
from jobs import Paths, StudyError, expand, parse_key, parse_study
from jobs.grid import derive_trial_seed, key_axes, trial_key
from studies import study_text, write_study
from trainers.spec import Method

# the study of these tests: study(sweep={...}) parses study_text(**S), write(tmp_path) writes it
S: dict[str, Any] = {"dataset": None, "methods": ["regular", "robust"], "trials": 2,
                     "base_seed": 7}


def study(**changes: Any):
    return parse_study(study_text("/tmp/unused", **{**S, **changes}), Path("s.toml"))


def write(tmp_path: Path, **changes: Any) -> Path:
    return write_study(tmp_path, file="s.toml", **{**S, **changes})


def test_expand_with_a_sweep_names_each_value_in_the_key_and_the_settings() -> None:
    s = study(sweep={"training.lr": [0.1, 0.2], "training": {"hidden": [8, 16]}})
    specs = expand(s)
    assert len(specs) == 2 * 2 * 2 * 2  # (regular once + robust at one radius) x lr x hidden x 2
    keys = [t.key for t in specs]
    assert keys[:4] == ["regular/eps_0/lr_0.1/hidden_8/trial_0",
                        "regular/eps_0/lr_0.1/hidden_8/trial_1",
                        "regular/eps_0/lr_0.1/hidden_16/trial_0",
                        "regular/eps_0/lr_0.1/hidden_16/trial_1"]
    assert "robust/eps_0.1/lr_0.2/hidden_16/trial_1" in keys
    for t in specs:
        axes = dict(t.axes)
        assert (t.train_spec.settings.lr, t.train_spec.settings.hidden) == \
            (axes["lr"], axes["hidden"])
        assert t.train_spec.seed == derive_trial_seed(7, t.key)
    assert len({t.train_spec.seed for t in specs}) == len(specs)


def test_no_sweep_keeps_keys_seeds_and_fingerprint() -> None:
    plain, swept = study(), study(sweep={"training": {"lr": [0.2]}})
    assert [t.key for t in expand(plain)] == ["regular/eps_0/trial_0", "regular/eps_0/trial_1",
                                              "robust/eps_0.1/trial_0", "robust/eps_0.1/trial_1"]
    assert all(t.axes == () for t in expand(plain))
    assert "sweep" not in plain.science() and plain.fingerprint != swept.fingerprint


@pytest.mark.parametrize("axes", [(), (("lr", 0.1),), (("lr", 1e-05), ("batch_size", 50)),
                                  (("robust_kernel", "chunked"), ("cuda_graphs", False))])
def test_key_round_trip(axes: tuple) -> None:
    key = trial_key(Method.ROBUST, 0.25, 3, axes)
    assert parse_key(key) == (Method.ROBUST, 0.25, 3)
    assert [name for name, _ in key_axes(key)] == [name for name, _ in axes]
    assert Paths("/tmp/r").trial_dir(key) == Path("/tmp/r/runs") / key


@pytest.mark.parametrize("key", ["robust/eps_0.1/lr_0.10/trial_0", "robust/eps_0.1/lr_1.0/trial_0",
                                 "robust/eps_0.1/../trial_0", "robust/eps_0.1/lr_../trial_0",
                                 "robust/eps_0.1/lr_0.1/../../trial_0",
                                 "robust/eps_0.1/lr_0.1/x/trial_0", "robust/eps_0.1/Lr_1/trial_0",
                                 "robust/eps_0.1/lr_0.1//trial_0", "robust/eps_0.1/lr_-1/trial_0",
                                 "robust/eps_0.1/trial_1/trial_0"])
def test_parse_key_refuses_escapes_and_other_forms_of_a_number(key: str) -> None:
    with pytest.raises(StudyError, match="invalid trial key"):
        parse_key(key)


@pytest.mark.parametrize("changes, message", [
    ({"sweep": {"training.lrr": [0.1]}}, "key 'sweep.training.lrr': not a training setting"),
    ({"sweep": {"cluster.mem_gb": [1]}}, "key 'sweep.cluster.mem_gb': not a training setting"),
    ({"sweep": {"training.lr": [0.1, -1]}}, "value -1: setting 'lr' must be"),
    ({"sweep": {"training.hidden": [8, 2.5]}}, "value 2.5: setting 'hidden'"),
    ({"sweep": {"training.lr": []}}, "must be a non-empty list"),
    ({"sweep": {"training.lr": [0.1, 0.10]}}, "value 0.1 listed twice"),
    ({"sweep": {"training.lr": 0.1}}, "must be a non-empty list"),
    ({"training": {"lr": 0.3}, "sweep": {"training.lr": [0.1]}}, "also set in [training]"),
])
def test_bad_sweep_is_one_line_naming_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(StudyError, match=r"s\.toml: ") as info:
        study(**changes)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_sweep_counts_in_the_grid_size_and_in_robusts_samples() -> None:
    with pytest.raises(StudyError, match="swept combinations"):
        study(trials=100000,
              sweep={"training.lr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]})
    with pytest.raises(StudyError, match="n_base=100000000"):
        study(sweep={"training.n_base": [10, 100000000]})


def test_bad_sweep_from_the_cli_is_exit_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, sweep={"training.lr": [0.1, "fast"]})
    assert main(["plan", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep.training.lr" in err and "'fast'" in err


# the local run: write_study(tmp_path, **SWEPT), two learning rates of one regular trial
SWEPT: dict[str, Any] = {
    "file": "swept.toml", "name": "swept", "radii": [0.05],
    "training": {"epochs": 1, "max_steps": 3, "batch_size": 20, "hidden": 4},
    "sweep": {"training.lr": [0.1, 0.2]},
    "cluster": {"gpus_per_node": 0, "gpus_per_task": 0, "cpus_per_task": 1, "device": "cpu"},
    "evaluation": {"test_subset": 10, "ball_samples": 5, "mean_samples": 5, "pgd_steps": 2,
                   "ga_population": 4, "ga_generations": 2, "ga_elite": 1}}


def test_a_local_run_with_two_learning_rates(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    f = write_study(tmp_path, **SWEPT)
    assert main(["submit", str(f), "--executor", "local", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["status", str(f), "--json"]) == 0
    assert '"done": 2' in capsys.readouterr().out
    assert main(["reduce", str(f)]) == 0
    df = pd.read_parquet(tmp_path / "root" / "results" / "metrics.parquet")
    assert sorted(df["training.lr"].unique()) == [0.1, 0.2]
    assert set(df["key"]) == {"regular/eps_0/lr_0.1/trial_0", "regular/eps_0/lr_0.2/trial_0"}
    for key, lr in zip(df["key"], df["training.lr"], strict=True):
        assert f"lr_{lr:g}/" in key
    assert main(["report", str(f), "--include-failed"]) == 0  # 3 steps: maybe below chance
    report = (tmp_path / "root" / "report.md").read_text()
    assert "regular lr=0.1" in report and "regular lr=0.2" in report
    # export: each swept value in a folder of its own, so no model is written over another
    assert main(["export", str(f), "--to", str(tmp_path / "out")]) == 0
    files = sorted(p.relative_to(tmp_path / "out").as_posix()
                   for p in (tmp_path / "out").rglob("*.pt"))
    assert files == ["regular/lr_0.1/eps_0.05_trial_0.pt", "regular/lr_0.2/eps_0.05_trial_0.pt"]


def test_the_walk_of_runs_finds_markers_below_swept_values(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    key = "robust/eps_0.1/lr_0.1/hidden_8/trial_0"
    paths.trial_dir(key).mkdir(parents=True)
    paths.done(key).write_text("{}")
    files = paths.trial_files()
    assert files.may_hold(key, "DONE.json")
    assert not files.may_hold("robust/eps_0.1/lr_0.2/hidden_8/trial_0", "DONE.json")


def test_the_table_keeps_a_column_per_swept_setting() -> None:
    from reduce.table import COLUMNS, empty_table, normalize

    rows = empty_table().to_dict("records") + [
        {"method": "robust", "radius": 0.1, "trial": 0, "metric": "clean_accuracy", "value": v,
         "key": f"robust/eps_0.1/lr_{lr}/trial_0", "training.lr": lr, "format": 1,
         "failed_training": False, "error": ""}
        for lr, v in ((0.2, 0.5), (0.1, 0.7))]
    df = normalize(pd.DataFrame(rows))
    assert list(df.columns) == [*COLUMNS, "training.lr"]
    assert list(df["training.lr"]) == [0.1, 0.2]
    assert list(normalize(empty_table()).columns) == COLUMNS


def test_plots_group_by_method_and_swept_values() -> None:
    from plots.results import bands, by_swept_values

    df = pd.DataFrame({"method": ["robust"] * 4, "radius": [0.1] * 4, "trial": [0, 1, 0, 1],
                       "metric": ["clean_accuracy"] * 4, "value": [0.5, 0.7, 0.8, 0.9],
                       "failed_training": [False] * 4, "training.lr": [0.1, 0.1, 0.2, 0.2]})
    grouped = bands(by_swept_values(df), "clean_accuracy")
    assert list(grouped["method"]) == ["robust lr=0.1", "robust lr=0.2"]
    assert list(grouped["median"]) == pytest.approx([0.6, 0.85])
    plain = df.drop(columns="training.lr")
    assert by_swept_values(plain) is plain


def test_the_plan_packs_each_combination_apart(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from cluster.planner import plan

    s = study(trials=3, sweep={"training.hidden": [8, 400]})
    the_plan = plan(expand(s), s.cluster)
    assert [(g.method.value, g.axes) for g in the_plan.groups] == [
        ("regular", (("hidden", 8),)), ("regular", (("hidden", 400),)),
        ("robust", (("hidden", 8),)), ("robust", (("hidden", 400),))]
    for task in the_plan.tasks:  # one setting per task: its trials train as one model
        assert len({t.axes for t in task.trials}) == 1
    costs = {g.axes: g.hours_per_trial for g in the_plan.groups if g.method is Method.ROBUST}
    assert costs[(("hidden", 400),)] > costs[(("hidden", 8),)]
    f = write(tmp_path, sweep={"training.hidden": [8, 400]})
    assert main(["plan", str(f)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("robust") and line.endswith("  hidden=400") for line in lines) == 1


def test_submit_checks_the_memory_of_every_swept_value(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, dataset="synthetic", sweep={"training.hidden": [8, 16000]},
              cluster={"gpus_per_node": 0, "gpus_per_task": 0, "device": "cpu", "mem_gb": 1})
    assert main(["submit", str(f), "--executor", "local", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hidden=16000: one trial needs" in err
    assert not (tmp_path / "root").exists()


def test_submit_checks_a_swept_train_subset_against_the_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataset_files import write_table

    csv = write_table(tmp_path / "t.csv", rows=60)  # 48 training rows
    f = write(tmp_path, dataset="csv", sweep={"training.train_subset": [10, 100]},
              cluster={"gpus_per_node": 0, "gpus_per_task": 0, "device": "cpu"},
              data={"data_file": str(csv), "label_column": "kind",
                    "drop_columns": ["id", "note"]})
    assert main(["submit", str(f), "--executor", "local", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train_subset asks for 100 training rows" in err


def test_a_swept_fused_kernel_on_a_cpu_is_refused() -> None:
    with pytest.raises(StudyError, match="'fused' runs on CUDA"):
        study(sweep={"training.robust_kernel": ["chunked", "fused"]}, cluster={"device": "cpu"})
    study(sweep={"training.robust_kernel": ["chunked", "auto"]}, cluster={"device": "cpu"})
