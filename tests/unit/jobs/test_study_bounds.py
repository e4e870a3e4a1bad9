"""Every key of a study file has values that must be refused (one line, exit code 2) and values
that must be accepted. The fuzz in test_cli_bad_input.py proves "no traceback"; this proves
"refused": a bound loosened (a maximum raised, a check dropped) fails here. A key of the study
file without a row in BOUNDS fails `test_every_key_has_its_bounds`, so a new setting comes with
its bounds tested.

Values are TOML; `{tmp}` is the test's temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from study_fuzz import FZ, _cli, _keys, _with

from cluster import plan, submit
from drosweep.errors import input_errors
from jobs import expand, load_study
from jobs.study import MAX_CPUS_PER_TASK
from studies import study_text

POS_INT = (["0", "-1", "1.5", '"3"', "true"], ["1", "7"])
NONNEG_INT = (["-1", "1.5", '"3"', "true"], ["0", "7"])
POS_NUM = (["0", "-1", "nan", "inf", '"0.5"', "true"], ["0.5", "3"])
NONNEG_NUM = (["-1", "nan", "inf", '"0.5"', "true"], ["0", "0.5"])
BOOL = (['"true"', "1", "0"], ["true", "false"])
TEXT = (["1", '""', "[]"], ['"abc"'])

# (table, key) -> (must be refused, must be accepted)
BOUNDS: dict[tuple[str | None, str], tuple[list[str], list[str]]] = {
    (None, "name"): (['""', '"a b"', '"-x"', "1", '"' + "a" * 65 + '"'], ['"ok_1.2-x"']),
    (None, "root"): (["1", '""', '"{tmp}/a%jb"', '"{tmp}/a\\nb"'], ['"{tmp}/other"']),
    (None, "dataset"): (['"nope"', "1", '""'], ['"synthetic"', '"moons"']),
    (None, "data_dir"): (["1", "[]"], ['"{tmp}/data"']),
    (None, "methods"): (["[]", '["nope"]', '"regular"', "[1]"],
                        ['["robust"]', '["regular", "adversarial", "langevin"]']),
    (None, "radii"): (["[]", "[-0.1]", "[1000.5]", '["x"]', "[nan]", "[inf]", "0.1"],
                      ["[0.05, 0.1]", "[0.2]"]),
    (None, "trials"): (["0", "-1", "100001", "1.5", '"2"', "true"], ["1", "5"]),
    (None, "base_seed"): (["-1", '"x"', "1.5"], ["0", "123"]),
    (None, "regular_per_radius"): BOOL,
    (None, "chain_reduce"): BOOL,
    (None, "unknown_key"): (["1", '"x"'], []),
    # [training]
    ("training", "epochs"): POS_INT,
    ("training", "batch_size"): POS_INT,
    ("training", "lr"): POS_NUM,
    ("training", "lr_step_size"): POS_INT,
    ("training", "lr_gamma"): (["0", "-1", "nan", "inf", '"x"'], ["0.5", "1"]),
    ("training", "hidden"): (POS_INT[0] + ["16385"], ["1", "64"]),
    ("training", "n_base"): (POS_INT[0] + ["100000001"], ["1", "7"]),
    ("training", "n_growth"): POS_NUM,
    ("training", "n_eps_scale"): POS_NUM,
    ("training", "temp_start"): POS_NUM,
    ("training", "temp_end"): POS_NUM,
    ("training", "temp_steps"): POS_INT,
    ("training", "temp_schedule"): (['"x"', "1"], ['"step"', '"epoch"']),
    ("training", "chunk_size"): POS_INT,
    ("training", "cuda_chunk_size"): POS_INT,
    ("training", "prune_threshold"): (["-1", "nan", '"x"'], ["0", "1e-13"]),
    ("training", "pgd_steps"): POS_INT,
    ("training", "pgd_step_factor"): POS_NUM,
    ("training", "adv_start_epoch"): NONNEG_INT,
    ("training", "langevin_points"): POS_INT,
    ("training", "langevin_step_factor"): POS_NUM,
    ("training", "langevin_noise"): NONNEG_NUM,
    ("training", "max_steps"): POS_INT,
    ("training", "checkpoint_every"): POS_INT,
    ("training", "checkpoint_every_s"): POS_NUM,
    ("training", "train_subset"): (["0", "-1", "1.5", '"3"', "true", "1000000000000"],
                                   ["1", "7"]),
    # removed: false (what every run computes) is dropped, anything else refused
    ("training", "preselect"): (["true", '"true"', "1"], ["false"]),
    ("training", "robust_kernel"): (['"fast"', "1", '""'], ['"auto"', '"chunked"', '"fused"']),
    ("training", "robust_precision"): (['"fp16"', "1", '"tf32"'],
                                       ['"ieee"', '"tf32x3"', '"bf16x3"']),
    ("training", "allow_tf32_override"): BOOL,
    ("training", "cuda_graphs"): BOOL,
    # [cluster]
    ("cluster", "partition"): TEXT,
    ("cluster", "gpus_per_node"): (["-1", "1.5", '"x"'], ["1", "8"]),
    ("cluster", "gpus_per_task"): (["-1", "1.5", '"x"'], ["0", "1"]),
    ("cluster", "gpu_mem_gb"): POS_NUM,
    ("cluster", "cpus_per_task"): (POS_INT[0] + [str(MAX_CPUS_PER_TASK + 1), "4097",
                                                 "2147483647"], ["1", "4096"]),
    ("cluster", "mem_gb"): (POS_NUM[0] + ["1e308"], ["8", "64"]),
    ("cluster", "time_limit_min"): (POS_INT[0] + ["1000000000000"], ["121", "720"]),  # > signal_delay_s
    ("cluster", "max_array_size"): (POS_INT[0] + ["9223372036854775807"], POS_INT[1]),
    ("cluster", "max_running"): POS_INT,
    ("cluster", "max_pack"): POS_INT,
    ("cluster", "fill_fraction"): (["0", "-1", "1.5", "nan", '"x"'], ["0.5", "1"]),
    ("cluster", "max_requeue"): NONNEG_INT,
    ("cluster", "signal_delay_s"): (POS_INT[0] + ["43200"], ["1", "120"]),  # < time_limit_min (720 min)
    ("cluster", "account"): TEXT,
    ("cluster", "qos"): TEXT,
    ("cluster", "constraint"): TEXT,
    ("cluster", "sbatch_extra"): (['"x"', '{ "Bad Key" = "x" }', '{ comment = "a\\nb" }',
                                   '{ output = "x" }', '{ array = "1-3" }'],
                                  ['{ comment = "hello" }', "{ comment = 1 }", "{}"]),
    ("cluster", "setup"): (['"module load x"', "[1]"], ['["module load x"]', "[]"]),
    ("cluster", "device"): (['"gpu"', "1"], ['"cpu"', '"auto"']),  # cuda: where CUDA is
    ("cluster", "local_parallelism"): POS_INT,
    ("cluster", "device_tflops"): POS_NUM,
    ("cluster", "launch_overhead_ms"): POS_NUM,
    ("cluster", "gpu_type"): (['"h100:2"', "1", '""'], ['"h100"']),
    ("cluster", "device_model"): TEXT,
    ("cluster", "calibration"): (['"{tmp}/missing.json"', "1"], []),
    # [evaluation]
    ("evaluation", "n_base"): (POS_INT[0] + ["100000001"], ["1", "10"]),
    ("evaluation", "n_growth"): POS_NUM,
    ("evaluation", "n_eps_scale"): POS_NUM,
    ("evaluation", "ball_samples"): (POS_INT[0] + ["100000001"], ["1", "100"]),
    ("evaluation", "mean_samples"): POS_INT,
    ("evaluation", "pgd_steps"): POS_INT,
    ("evaluation", "pgd_step"): POS_NUM,
    ("evaluation", "pgd_random_start"): BOOL,
    ("evaluation", "ga_population"): (POS_INT[0] + ["4"], ["5", "100"]),  # > ga_elite (4)
    ("evaluation", "ga_generations"): POS_INT,
    ("evaluation", "ga_elite"): (NONNEG_INT[0] + ["100"], ["0", "99"]),  # < ga_population
    ("evaluation", "ga_tournament"): POS_INT,
    ("evaluation", "ga_mutation"): (["0", "1", "-1", "nan", '"x"'], ["0.1", "0.9"]),
    ("evaluation", "ga_polish"): BOOL,
    ("evaluation", "lipschitz"): BOOL,
    ("evaluation", "test_subset"): POS_INT,
    ("evaluation", "chunk_size"): POS_INT,
    ("evaluation", "batch_size"): POS_INT,
    ("evaluation", "seed"): NONNEG_INT,
    ("evaluation", "allow_tf32_override"): BOOL,
}

def _cases(which: int) -> list[object]:
    out: list[object] = []
    for (table, key), lists in BOUNDS.items():
        out += [pytest.param(table, key, v, id=f"{table or 'top'}.{key}={v}") for v in lists[which]]
    return out


def _study(tmp_path: Path, table: str | None, key: str, value: str) -> Path:
    path = tmp_path / "s.toml"
    text = study_text(tmp_path / "root", **FZ)
    path.write_text(_with(text, table, key, value.replace("{tmp}", str(tmp_path))))
    return path


def test_every_key_has_its_bounds() -> None:
    missing = [k for k in _keys() if k not in BOUNDS]
    assert not missing, f"keys of the study file without bounds tested here: {missing}"


@pytest.mark.parametrize(("table", "key", "value"), _cases(0))
def test_known_invalid_is_refused(table: str | None, key: str, value: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _study(tmp_path, table, key, value)
    rc, out, err = _cli(["submit", str(path), "--dry-run", "--executor", "local"], capsys)
    assert rc == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(("table", "key", "value"), _cases(1))
def test_known_valid_is_accepted(table: str | None, key: str, value: str, tmp_path: Path) -> None:
    path = _study(tmp_path, table, key, value)
    try:
        study = load_study(path)
        plan(expand(study), study.cluster)
        submit(study, "local", dry_run=True, progress=False)
    except input_errors() as exc:
        pytest.fail(f"refused: {exc}")
