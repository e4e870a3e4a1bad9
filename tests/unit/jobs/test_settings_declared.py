"""Settings declared once on their fields (common.settings): one reader for `[training]`,
`[evaluation]`, `[cluster]` and `[data]` with each table's messages word for word, and
fingerprints that do not move."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from common.errors import InputError
from common.settings import declared
from jobs import StudyError, parse_study
from jobs.evaluation import EvalSettings
from jobs.study import ClusterProfile
from trainers.datasets import DataOptions, parse_options
from trainers.spec import SpecError, TempSchedule, TrainSettings

MINIMAL = 'name = "t"\nroot = "/r"\nmethods = ["regular", "robust"]\nradii = [0.1, 0.2]\ntrials = 2\n'


def _sha(d: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def test_default_fingerprints_are_pinned() -> None:
    """Computed before the settings were declared on their fields: the `to_dict` bytes and the
    study fingerprints of existing roots must not move."""
    assert _sha(TrainSettings().to_dict()) == \
        "f6c1ff49eda40094a972158249a806ef5d2636e307c799ae58b8407c07d819c7"
    assert _sha(EvalSettings().to_dict()) == \
        "4a671bff097d11f5f107bbaff63c7d1e1b8c15a1dd93e7f3c187209f8464ea1f"
    assert _sha(ClusterProfile().to_dict()) == \
        "a3db67cf977b793bc5cd11e6ed4f5aa3c54964c3d6720242a4ca35cc2450d379"
    # with the grid: what results tables written before a grid could grow carry
    assert parse_study(MINIMAL, Path("x.toml")).grid_fingerprint == \
        "9bdc4311c252dc928186f28bb5779bf50b4a0919864504f6b34e625dfa9b8b63"
    moons = MINIMAL.replace('trials = 2', 'trials = 2\ndataset = "moons"')
    assert parse_study(moons, Path("x.toml")).grid_fingerprint == \
        "852d5118a2a2ae060dbf0911943cbdc70fe906e5f5d839813ad7a68b99d29604"
    # without it: the root's study, which a grown grid keeps
    assert parse_study(MINIMAL, Path("x.toml")).fingerprint == \
        "0a406a38fb54958b7a7039754e44c431a16cd758293f2a2e920b2cc71dc274ff"
    assert parse_study(moons, Path("x.toml")).fingerprint == \
        "34cf2980972fd3ba4a70000eb77a37e4dd70868c54e21d87a4ee2864cf528b7b"


# (table text, the message after "x.toml: "), word for word as each table has always said it
MESSAGES = [
    ("[training]\nepochs = 0", "table 'training': setting 'epochs' must be a positive integer, "
                               "got 0"),
    ("[training]\nlr = inf", "table 'training': setting 'lr' must be finite, got inf"),
    ("[training]\nlr = 0", "table 'training': setting 'lr' must be a positive number, got 0.0"),
    ("[training]\nlr_gamma = 2", "table 'training': setting 'lr_gamma' must be in (0, 1], got 2.0"),
    ("[training]\nprune_threshold = 1", "table 'training': setting 'prune_threshold' must be in "
                                        "[0, 1e-3), got 1.0"),
    ("[training]\nlangevin_noise = -1", "table 'training': setting 'langevin_noise' must be a "
                                        "finite number >= 0, got -1.0"),
    ("[training]\nadv_start_epoch = -1", "table 'training': setting 'adv_start_epoch' must be an "
                                         "integer >= 0, got -1"),
    ("[training]\nmax_steps = 0", "table 'training': setting 'max_steps' must be a positive "
                                  "integer or unset, got 0"),
    ("[training]\nhidden = 16385", "table 'training': setting 'hidden' must be <= 16,384 (a "
                                   "16,385-wide MLP has 0.537 G weights), got 16385"),
    ("[training]\ntrain_subset = 1000000000", "table 'training': setting 'train_subset' must be "
                                              "<= 100,000,000 rows, got 1,000,000,000"),
    ("[training]\ntemp_schedule = 'x'", "table 'training': setting 'temp_schedule' must be one of "
                                        "['step', 'epoch'], got 'x'"),
    ("[training]\nrobust_kernel = 1", "table 'training': setting 'robust_kernel' must be one of "
                                      "['auto', 'chunked', 'fused'], got 1"),
    ("[training]\ncuda_graphs = 1", "table 'training': setting 'cuda_graphs' must be true or "
                                    "false, got 1"),
    ("[training]\nepochz = 1", "table 'training': unknown training setting(s) ['epochz']; "
                               "allowed: " + str(sorted(f.name for f in declared(TrainSettings)))),
    ("[evaluation]\npgd_step = inf", "table 'evaluation': evaluation setting 'pgd_step' must be "
                                     "a positive number, got inf"),
    ("[evaluation]\ntest_subset = 0", "table 'evaluation': evaluation setting 'test_subset' must "
                                      "be a positive integer or unset, got 0"),
    ("[evaluation]\nball_samples = 100000001", "table 'evaluation': evaluation setting "
                                               "'ball_samples' must be at most 100,000,000, got "
                                               "100000001"),
    ("[evaluation]\nga_elite = 100", "table 'evaluation': evaluation setting 'ga_elite' must be "
                                     "in [0, ga_population), got 100"),
    ("[evaluation]\nga_elite = 'x'", "table 'evaluation': evaluation setting 'ga_elite' must be "
                                     "in [0, ga_population), got 'x'"),
    ("[evaluation]\nga_mutation = 1", "table 'evaluation': evaluation setting 'ga_mutation' must "
                                      "be in (0, 1) or unset, got 1.0"),
    ("[evaluation]\nseed = -1", "table 'evaluation': evaluation setting 'seed' must be an "
                                "integer >= 0, got -1"),
    ("[cluster]\ncpus_per_task = 0", "key 'cluster.cpus_per_task': must be an integer >= 1 and "
                                     "<= 4,096, got 0"),
    ("[cluster]\nmax_requeue = -1", "key 'cluster.max_requeue': must be an integer >= 0 and <= "
                                    "10,000, got -1"),
    ("[cluster]\nmem_gb = 0", "key 'cluster.mem_gb': must be a number in (0, 65536], got 0"),
    ("[cluster]\ndevice_tflops = 0", "key 'cluster.device_tflops': must be a number in (0.001, "
                                     "1e+06], got 0"),
    ("[cluster]\npartition = ''", "key 'cluster.partition': must be a non-empty string, got ''"),
    ("[cluster]\nqos = \"a\\nb\"", "key 'cluster.qos': must be a single line"),
    ("[cluster]\ndevice = 'gpu'", "key 'cluster.device': must be 'auto', 'cuda' or 'cpu', got "
                                  "'gpu'"),
    ("[cluster]\nsetup = 'x'", "key 'cluster.setup': must be a list of one-line shell commands"),
    ("[cluster]\nsbatch_extra = 1", "key 'cluster.sbatch_extra': must be a table of sbatch "
                                    "option = value"),
    ("[cluster]\narray_parallelism = 0", "key 'cluster.array_parallelism': must be an integer "
                                         ">= 1 and <= 100,000, got 0"),
    ("[cluster]\narray_parallelism = 2\nmax_running = 2", "key 'cluster.array_parallelism': is "
                                                          "the old name of cluster.max_running: "
                                                          "give one"),
    ("[cluster]\ngpus_per_node = 1\ngpus_per_task = 2", "key 'cluster.gpus_per_task': asks for 2 "
                                                        "GPUs but a node has 1 "
                                                        "(cluster.gpus_per_node)"),
    ("[cluster]\ngpu_type = 'h100:2'", "key 'cluster.gpu_type': must be a gres type name (e.g. "
                                       "'h100'), got 'h100:2'"),
]


@pytest.mark.parametrize(("table", "message"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_each_table_keeps_its_words(table: str, message: str) -> None:
    with pytest.raises(StudyError) as info:
        parse_study(MINIMAL + table + "\n", Path("x.toml"))
    assert str(info.value) == f"x.toml: {message}"


def test_cluster_unknown_key_lists_old_names_too() -> None:
    with pytest.raises(StudyError) as info:
        parse_study(MINIMAL + "[cluster]\ngpus = 3\n", Path("x.toml"))
    allowed = sorted([f.name for f in declared(ClusterProfile)] + ["array_parallelism"])
    assert str(info.value) == f"x.toml: key 'cluster.gpus': unknown key; allowed: " \
                              f"{', '.join(allowed)}"


def test_data_options_words_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"^key 'data.n_train': must be an integer, got 'x'$"):
        parse_options("moons", {"n_train": "x"})
    with pytest.raises(InputError, match=r"^key 'data.nope': unknown setting of data set "
                                         r"'moons'; allowed: n_test, n_train, radius, seed"):
        parse_options("moons", {"nope": 1})
    with pytest.raises(InputError, match=r"got \['a', 1\]$"):  # shown as TOML gave it
        parse_options("csv", {"data_file": "d.csv", "label_column": "y", "drop_columns": ["a", 1]})
    options = parse_options("csv", {"data_file": "d.csv", "label_column": "y",
                                    "drop_columns": ["a"]}, seed=7)
    assert options.data_file == str(tmp_path / "d.csv")  # type: ignore[attr-defined]
    assert options.drop_columns == ("a",) and options.seed == 7  # type: ignore[attr-defined]
    assert parse_options("avila", None) == DataOptions()


def test_instances_are_checked_by_the_same_declarations() -> None:
    """`validate` on a built instance, not only a read table: what the reader refuses."""
    with pytest.raises(SpecError, match="setting 'temp_schedule' must be one of"):
        TrainSettings(temp_schedule="x").validate()  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"setting 'lr_gamma' must be in \(0, 1\], got True"):
        TrainSettings.from_dict({"lr_gamma": True})  # a bool is no number
    with pytest.raises(SpecError, match=r"'prune_threshold' must be in \[0, 1e-3\), got False"):
        TrainSettings.from_dict({"prune_threshold": False})
    assert TrainSettings.from_dict({"temp_schedule": "epoch", "lr": 1}).lr == 1.0
    assert TrainSettings.from_dict({"temp_schedule": "epoch"}).temp_schedule is TempSchedule.EPOCH
    profile = parse_study(MINIMAL + "[cluster]\nmem_gb = 8\narray_parallelism = 3\n",
                          Path("x.toml")).cluster
    assert profile.mem_gb == 8.0 and isinstance(profile.mem_gb, float) and profile.max_running == 3
