"""Study files: validation names file + key + what is allowed; the shipped studies load."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobs import StudyError, expand, load_study, parse_study
from jobs.evaluation import EvalSettings
from trainers.spec import Method, TrainSettings

REPO = Path(__file__).resolve().parents[3]

MINIMAL = """
name = "t"
root = "ROOT"
methods = ["regular", "robust"]
radii = [0.1, 0.2]
trials = 2
"""


def study_text(extra: str = "", base: str = MINIMAL) -> str:
    return base + extra


def load(tmp_path: Path, text: str):
    f = tmp_path / "study.toml"
    f.write_text(text.replace("ROOT", str(tmp_path / "root")))
    return load_study(f)


def test_shipped_studies_load() -> None:
    paper = load_study(REPO / "studies" / "paper.toml")
    assert paper.methods == tuple(Method)
    assert paper.radii == (0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    assert paper.trials == 51
    assert paper.settings == TrainSettings()  # exactly the paper's defaults
    assert len(expand(paper)) == 51 + 3 * 7 * 51
    smoke = load_study(REPO / "studies" / "smoke.toml")
    assert len(smoke.methods) == 2 and len(smoke.radii) == 2 and smoke.trials == 3
    assert smoke.settings.train_subset is not None


def test_minimal_defaults(tmp_path: Path) -> None:
    s = load(tmp_path, MINIMAL)
    assert s.dataset == "avila" and s.base_seed == 0 and not s.regular_per_radius
    assert s.root == tmp_path / "root"
    assert s.settings == TrainSettings()
    assert s.cluster.gpus_per_task == 1


def test_root_override_and_relative_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = parse_study(MINIMAL.replace("ROOT", "rel/dir"), Path("x.toml"))
    assert s.root == tmp_path / "rel" / "dir"
    s2 = parse_study(MINIMAL.replace("ROOT", "rel/dir"), Path("x.toml"), root=tmp_path / "other")
    assert s2.root == tmp_path / "other"
    # --root makes `root` optional in the file
    no_root = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith("root"))
    assert parse_study(no_root, Path("x.toml"), root="o").root == tmp_path / "o"


def test_fingerprint_covers_science_not_cluster(tmp_path: Path) -> None:
    a = load(tmp_path, MINIMAL)
    b = load(tmp_path, MINIMAL + "\n[cluster]\ntime_limit_min = 30\n")
    c = load(tmp_path, MINIMAL + "\n[training]\nepochs = 3\n")
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize(("text", "needle"), [
    ("name = 't'\nroot = 'x'\nmethods = ['regular'\n", "malformed TOML"),
    (MINIMAL + "colour = 'red'\n", "key 'colour': unknown key; allowed:"),
    (MINIMAL.replace("radii = [0.1, 0.2]", "radii = [-0.1]"), "key 'radii'"),
    (MINIMAL.replace("radii = [0.1, 0.2]", "radii = [0.0]"), "finite number > 0"),
    (MINIMAL.replace("radii = [0.1, 0.2]", "radii = [0.1, 0.1]"), "listed twice"),
    (MINIMAL.replace("radii = [0.1, 0.2]", "radii = []"), "key 'radii'"),
    (MINIMAL.replace("trials = 2", "trials = 0"), "key 'trials': must be an integer >= 1"),
    (MINIMAL.replace("trials = 2", "trials = 1.5"), "key 'trials'"),
    (MINIMAL.replace('"robust"', '"robustt"'), "unknown method 'robustt'; allowed: regular"),
    (MINIMAL.replace('name = "t"', 'name = "../evil"'), "key 'name'"),
    (MINIMAL.replace("trials = 2", ""), "key 'trials': missing"),
    (MINIMAL + "dataset = 'cifar10'\n", "unknown data set 'cifar10'"),
    (MINIMAL + "[training]\nepochz = 3\n", "unknown training setting(s) ['epochz']"),
    (MINIMAL + "[training]\nepochs = -3\n", "'epochs' must be a positive integer"),
    (MINIMAL + "[cluster]\ngpus = 3\n", "key 'cluster.gpus': unknown key; allowed:"),
    (MINIMAL + "[cluster]\ntime_limit_min = 0\n", "key 'cluster.time_limit_min'"),
    (MINIMAL + "[cluster]\ndevice = 'tpu'\n", "key 'cluster.device'"),
    (MINIMAL + "[cluster]\ngpus_per_node = 1\ngpus_per_task = 2\n", "cluster.gpus_per_task"),
    (MINIMAL + "[cluster]\nsbatch_extra = { 'Bad Key' = 'x' }\n", "cluster.sbatch_extra"),
    (MINIMAL + "[cluster]\nmax_array_size = 0\n", "cluster.max_array_size"),
])
def test_bad_study_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(StudyError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "study.toml") in message
    assert needle in message
    assert "\n" not in message
    assert not (tmp_path / "root").exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="study file not found"):
        load_study(tmp_path / "nope.toml")


def test_load_is_fast() -> None:
    start = time.perf_counter()
    expand(load_study(REPO / "studies" / "paper.toml"))
    assert time.perf_counter() - start < 1.0


def test_evaluation_table_and_chain(tmp_path: Path) -> None:
    s = load(tmp_path, MINIMAL + "chain_reduce = true\n[evaluation]\npgd_steps = 3\n")
    assert s.chain_reduce and s.evaluation == EvalSettings(pgd_steps=3)
    assert load(tmp_path, MINIMAL).evaluation is None  # no table: the evaluation's default
    assert s.fingerprint == load(tmp_path, MINIMAL).fingerprint  # evaluation is not training
    with pytest.raises(StudyError, match="key 'evaluation': must be a table"):
        load(tmp_path, MINIMAL + "evaluation = 3\n")
    # the table is read when the study loads: a bad value fails here, naming the table
    with pytest.raises(StudyError, match=r"table 'evaluation': unknown key\(s\) \['pgd_stepz'\]"):
        load(tmp_path, MINIMAL + "[evaluation]\npgd_stepz = 3\n")
    with pytest.raises(StudyError, match=r"the evaluation's N\(eps\).*or set ball_samples"):
        load(tmp_path, MINIMAL + "[evaluation]\nn_growth = 1e300\n")
    assert load(tmp_path, MINIMAL + "[evaluation]\nn_growth = 1e300\nball_samples = 9\n") \
        .evaluation == EvalSettings(n_growth=1e300, ball_samples=9)
