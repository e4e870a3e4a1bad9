"""The study file: what to train (grid and settings) and where it runs (cluster profile).

Everything is validated while loading, before any file is written or job submitted; each error
names the file, the key and what is allowed, and unknown keys are errors (a typo must not silently
fall back to a default on a thousand-GPU-hour run).

Relative `root` and `data_dir` are taken relative to the current working directory, like any path
on the command line; `--root` overrides the root.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from common.settings import Wording, read, setting
from jobs.axes import axis_segment, value_tag
from jobs.errors import StudyError
from jobs.evaluation import EvalSettings
from jobs.limits import (
    MAX_ARRAY_SIZE,
    MAX_GPU_MEM_GB,
    MAX_GPUS_PER_NODE,
    MAX_GRID_TRIALS,
    MAX_MEM_GB,
    MAX_PACK,
    MAX_RADII,
    MAX_REQUEUE,
    MAX_SIGNAL_DELAY_S,
    MAX_TIME_LIMIT_MIN,
    MAX_TRIALS,
    grid_size,
)
from jobs.radius import radius_tag
from jobs.sbatch import check_sbatch_extra
from trainers.datasets import DataError, DataOptions, get_source, names, parse_options
from trainers.spec import MAX_RADIUS, Method, SpecError, TrainSettings, check_ball_samples

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SBATCH_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
DEFAULT_MAX_ARRAY_SIZE = 1001       # SLURM's default MaxArraySize
MAX_CPUS_PER_TASK = 4096          # more than any node has: also what torch threads accept
_BAD_PATH = re.compile(r"[%\x00-\x1f\x7f]")  # expanded by SLURM (%j ...) or not in a file name


def _unknown_cluster_key(unknown: list[str], allowed: list[str]) -> str:
    return f"key 'cluster.{unknown[0]}': unknown key; allowed: {', '.join(allowed)}"


CLUSTER_WORDING = Wording(  # how `[cluster]` refusals read: bounds spelled out
    error=StudyError, key=lambda name: f"key 'cluster.{name}':", unknown=_unknown_cluster_key,
    spelled=True, as_given=True, one_line="must be a single line",
    items="must be a list of one-line shell commands",
    table="must be a table of sbatch option = value")
_OLD_CLUSTER_KEYS = {"array_parallelism": "max_running"}


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how the tasks run. Defaults suit a generic GPU cluster; a study overrides them.
    Bounds and one-line docs are declared on the fields (common.settings)."""

    partition: str | None = setting(None, "SLURM partition (unset: the cluster's default)")
    gpus_per_node: int = setting(1, "GPUs of one node (hardware)", minimum=0,
                                 maximum=MAX_GPUS_PER_NODE)
    gpus_per_task: int = setting(1, "GPUs each task asks for (0: CPU-only tasks)", minimum=0,
                                 maximum=MAX_GPUS_PER_NODE)
    gpu_mem_gb: float = setting(16.0, "memory of one GPU: no packed task may need more",
                                minimum=0, above=True, maximum=MAX_GPU_MEM_GB)
    cpus_per_task: int = setting(4, "CPUs of each task", minimum=1, maximum=MAX_CPUS_PER_TASK)
    mem_gb: float = setting(16.0, "memory of each task", minimum=0, above=True,
                            maximum=MAX_MEM_GB)
    time_limit_min: int = setting(720, "time limit of each task; longer trials are "
                                  "checkpointed and requeued", minimum=1,
                                  maximum=MAX_TIME_LIMIT_MIN)
    max_array_size: int | None = setting(None, "MaxArraySize, caps the array index + 1 (unset: "
                                         "`scontrol show config`'s, else 1001)", minimum=1,
                                         maximum=MAX_ARRAY_SIZE)
    max_running: int = setting(64, "tasks of the whole study running at once, all arrays "
                               "(old name: array_parallelism)", minimum=1,
                               maximum=MAX_GRID_TRIALS)
    max_pack: int = setting(8, "at most this many trials per task", minimum=1, maximum=MAX_PACK)
    fill_fraction: float = setting(0.5, "share of the time limit a packed task is planned to "
                                   "use", minimum=0, above=True, maximum=1.0)
    max_requeue: int = setting(30, "preemptions and timeouts a task survives", minimum=0,
                               maximum=MAX_REQUEUE)
    signal_delay_s: int = setting(120, "USR2 this long before the time limit (checkpoint, "
                                  "requeue)", minimum=1, maximum=MAX_SIGNAL_DELAY_S)
    account: str | None = setting(None, "SLURM account to charge")
    qos: str | None = setting(None, "SLURM quality of service")
    constraint: str | None = setting(None, "SLURM node features (--constraint)")
    sbatch_extra: dict[str, str] = setting(doc="more `#SBATCH --key=value` lines, e.g. "
                                           "{ exclude = \"node1\" }", factory=dict)
    setup: tuple[str, ...] = setting((), "shell lines run before each task (module load ...)")
    device: str = setting("auto", "torch device inside a task", choices=("auto", "cuda", "cpu"))
    local_parallelism: int = setting(1, "tasks at once with the local executor", minimum=1,
                                     maximum=MAX_CPUS_PER_TASK)
    device_tflops: float = setting(15.0, "cost model: sustained fp32 TFLOP/s of one task's "
                                   "device", minimum=1e-3, above=True, maximum=1e6)
    launch_overhead_ms: float = setting(0.3, "cost model: fixed time of one sequential pass",
                                        minimum=0, above=True, maximum=1e4)
    gpu_type: str | None = setting(None, "gres type to request (--gpus-per-node=TYPE:N)")
    device_model: str | None = setting(None, "what the tasks run on, for estimates (unset: "
                                       "gpu_type)")
    calibration: str | None = setting(None, "calibration file of measured rates "
                                      "(cluster.calibration)")

    @property
    def array_size_cap(self) -> int:
        """Tasks per array: `max_array_size`, else SLURM's default MaxArraySize."""
        return self.max_array_size if self.max_array_size is not None else DEFAULT_MAX_ARRAY_SIZE

    def validate(self) -> None:
        """What involves more than one field, or more than a bound (a message without the file:
        the reader adds it)."""
        if self.gpu_type is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.gpu_type):
            raise StudyError(f"key 'cluster.gpu_type': must be a gres type name (e.g. 'h100'), "
                             f"got {self.gpu_type!r}")
        if self.gpus_per_task > self.gpus_per_node:
            raise StudyError(f"key 'cluster.gpus_per_task': asks for {self.gpus_per_task} GPUs "
                             f"but a node has {self.gpus_per_node} (cluster.gpus_per_node)")
        if self.signal_delay_s >= self.time_limit_min * 60:
            raise StudyError("key 'cluster.signal_delay_s': must be shorter than "
                             "cluster.time_limit_min")
        check_sbatch_extra(self.sbatch_extra)  # `plan` and a local run refuse what sbatch would be given

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Study:
    """A validated study file. `fingerprint` covers what each trial trains: not where it runs,
    nor the grid (which may grow at one root)."""

    name: str
    root: Path
    dataset: str
    methods: tuple[Method, ...]
    radii: tuple[float, ...]
    trials: int
    base_seed: int
    regular_per_radius: bool
    settings: TrainSettings
    cluster: ClusterProfile
    data_dir: Path | None
    source: Path                     # the file it was read from
    text: str                        # its exact text (frozen into the root at submit)
    evaluation: EvalSettings | None = None  # [evaluation]; None: the file has none
    chain_reduce: bool = False       # submit queues reduce + report after the training arrays
    data_options: DataOptions = field(default_factory=DataOptions)  # [data]: the set's settings
    # [sweep]: training settings swept as more grid axes, (setting, values) in the file's order
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def fingerprint(self) -> str:
        """The science without the grid: a root's study keeps it when trials are added."""
        return _digest({k: v for k, v in self.science().items() if k not in GRID_KEYS})

    @property
    def grid_fingerprint(self) -> str:
        """The science with the grid: what `fingerprint` was before a grid could grow (results
        tables written then carry it)."""
        return _digest(self.science())

    def science(self) -> dict[str, Any]:
        """The part of the study that decides what is trained (same science = same study)."""
        return {"name": self.name, "dataset": self.dataset,
                "methods": [m.value for m in self.methods], "radii": list(self.radii),
                "trials": self.trials, "base_seed": self.base_seed,
                "regular_per_radius": self.regular_per_radius,
                "training": self.settings.to_dict(),
                # only for data sets with settings: Avila studies keep their fingerprint
                **({"data": d} if (d := self.data_options.to_dict()) else {}),
                # only with a sweep: a study without one keeps its fingerprint
                **({"sweep": [[k, list(v)] for k, v in self.sweep]} if self.sweep else {})}


GRID_KEYS = ("methods", "radii", "trials")  # of `Study.science()`: may grow at one root


def _digest(science: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(science, sort_keys=True).encode()).hexdigest()


_TOP_KEYS = ("name", "root", "dataset", "data_dir", "methods", "radii", "trials", "base_seed",
             "regular_per_radius", "chain_reduce", "training", "cluster", "evaluation", "data",
             "sweep")
_REQUIRED = ("name", "root", "methods", "radii", "trials")


class _Reader:
    """Typed access to one TOML table with errors that name the file and the dotted key."""

    def __init__(self, source: Path, table: dict[str, Any], prefix: str = "") -> None:
        self.source, self.table, self.prefix = source, table, prefix

    def fail(self, key: str, message: str) -> StudyError:
        return StudyError(f"{self.source}: key '{self.prefix}{key}': {message}")

    def check_keys(self, allowed: tuple[str, ...] | list[str]) -> None:
        unknown = sorted(set(self.table) - set(allowed))
        if unknown:
            raise self.fail(unknown[0], f"unknown key; allowed: {', '.join(sorted(allowed))}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.table.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int | None = None) -> int:
        value = self.table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum \
                or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f">= {minimum} and <= {maximum:,}"
            raise self.fail(key, f"must be an integer {bound}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value


def _methods(r: _Reader) -> tuple[Method, ...]:
    allowed = [m.value for m in Method]
    raw = r.get("methods")
    if not isinstance(raw, list) or not raw:
        raise r.fail("methods", f"must be a non-empty list of methods from {allowed}")
    out: list[Method] = []
    for item in raw:
        if not isinstance(item, str) or item not in allowed:
            raise r.fail("methods", f"unknown method {item!r}; allowed: {', '.join(allowed)}")
        if Method(item) in out:
            raise r.fail("methods", f"method {item!r} listed twice")
        out.append(Method(item))
    return tuple(out)


def _radii(r: _Reader) -> tuple[float, ...]:
    raw = r.get("radii")
    if not isinstance(raw, list) or not raw:
        raise r.fail("radii", "must be a non-empty list of radii > 0")
    if len(raw) > MAX_RADII:
        raise r.fail("radii", f"{len(raw):,} radii, more than the limit {MAX_RADII:,}")
    out: list[float] = []
    tags: set[str] = set()
    for item in raw:
        if not isinstance(item, int | float) or isinstance(item, bool) \
                or not math.isfinite(item) or item <= 0:
            raise r.fail("radii", f"every radius must be a finite number > 0, got {item!r}")
        if item > MAX_RADIUS:
            raise r.fail("radii", f"radius {item!r} is more than the limit {MAX_RADIUS:g} (the "
                         f"features are standardized: a larger ball covers all the data)")
        tag = radius_tag(float(item))
        if tag in tags:
            raise r.fail("radii", f"radius {item!r} listed twice")
        tags.add(tag)
        out.append(float(item))
    return tuple(out)


def _sweep(r: _Reader, raw_training: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """`[sweep]`: training settings as more grid axes (`training.lr = [0.1, 0.2]`, or under
    `[sweep.training]`), each value checked as the setting itself is (`TrainSettings.from_dict`)
    and stored as that check reads it (an integer lr is 0.2's kind: a float)."""
    raw = r.get("sweep")
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise r.fail("sweep", "must be a table of training.<setting> = [values]")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "training" and isinstance(value, dict):
            flat.update({f"training.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    base = raw_training if isinstance(raw_training, dict) else {}
    axes: list[tuple[str, tuple[Any, ...]]] = []
    for key, values in flat.items():
        where, _, name = key.partition(".")
        if where != "training" or name not in {f.name for f in fields(TrainSettings)}:
            raise r.fail(f"sweep.{key}", f"not a training setting; allowed: training.<one of "
                         f"{', '.join(f.name for f in fields(TrainSettings))}>")
        if name in base:
            raise r.fail(f"sweep.{key}", "is also set in [training]; give it in one place")
        if not isinstance(values, list) or not values:
            raise r.fail(f"sweep.{key}", "must be a non-empty list of values")
        read: list[Any] = []
        for value in values:
            try:
                checked = getattr(TrainSettings.from_dict({**base, name: value}), name)
            except (SpecError, TypeError) as exc:
                raise r.fail(f"sweep.{key}", f"value {value!r}: {exc}") from None
            if axis_segment(name, checked) is None:
                raise r.fail(f"sweep.{key}", f"value {value!r} cannot name a folder (use "
                             f"non-negative numbers, true/false or names of letters, digits, "
                             f"'.' and '-')")
            if value_tag(checked) in {value_tag(v) for v in read}:
                raise r.fail(f"sweep.{key}", f"value {value!r} listed twice")
            read.append(checked)
        axes.append((name, tuple(read)))
    return tuple(axes)


def _check_grid(r: _Reader, methods: tuple[Method, ...], radii: tuple[float, ...], trials: int,
                regular_per_radius: bool, settings: TrainSettings,
                sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()) -> None:
    """The grid's size and each radius's N(eps), from the counts alone (nothing is listed); with
    a sweep, for every combination of its values."""
    if trials > MAX_TRIALS:
        raise r.fail("trials", f"{trials:,} trials per method and radius, more than the limit "
                     f"{MAX_TRIALS:,}")
    n_regular = sum(m is Method.REGULAR for m in methods)
    combos = math.prod(len(values) for _, values in sweep)
    total = grid_size(n_regular, len(methods) - n_regular, len(radii), trials,
                      regular_per_radius) * combos
    if total > MAX_GRID_TRIALS:
        swept = f", {combos:,} swept combinations" if sweep else ""
        raise r.fail("trials", f"the grid has {total:,} trials ({len(methods)} method(s), "
                     f"{len(radii)} radii{swept}, {trials:,} trials each), more than the limit "
                     f"{MAX_GRID_TRIALS:,}")
    if Method.ROBUST in methods:
        for values in itertools.product(*(v for _, v in sweep)):
            combo = dataclasses.replace(settings, **dict(zip((k for k, _ in sweep), values,
                                                             strict=True)))
            for radius in radii:
                try:
                    check_ball_samples(radius, combo, "robust's N(eps)")
                except SpecError as exc:
                    where = "".join(f", {k}={value_tag(v)}" for (k, _), v in
                                    zip(sweep, values, strict=True))
                    raise r.fail("radii", f"{exc}{where}") from None


def _check_subset(r: _Reader, dataset: str, options: DataOptions,
                  settings: TrainSettings) -> None:
    """A train subset larger than the data is a mistake, named with both numbers: here where the
    rows are known without reading a file (fixed sets, generated ones); a table's rows are
    counted when it is read (submit, training: `trainers.data.subset_train`)."""
    source = get_source(dataset)
    if settings.train_subset is None or not (source.train_rows is not None or source.generated):
        return
    rows = source.shape(options).train_rows
    if settings.train_subset > rows:
        raise r.fail("training.train_subset", f"{settings.train_subset:,} rows asked, but data "
                     f"set '{dataset}' has {rows:,} training rows")


def _settings(source: Path, raw: Any) -> TrainSettings:
    if raw is None:
        return TrainSettings()
    if not isinstance(raw, dict):
        raise StudyError(f"{source}: key 'training': must be a table of training settings")
    try:
        return TrainSettings.from_dict(raw)
    except SpecError as exc:
        raise StudyError(f"{source}: table 'training': {exc}") from None


def _evaluation(r: _Reader, radii: tuple[float, ...]) -> EvalSettings | None:
    """The `[evaluation]` table, checked against every radius of the study (the worst-case
    accuracy's N(eps) must stay sane); None when the file has none or an empty one."""
    raw = r.get("evaluation")
    if raw is not None and not isinstance(raw, dict):
        raise r.fail("evaluation", "must be a table of evaluation settings")
    if not raw:
        return None
    source = f"{r.source}: table 'evaluation'"
    settings = EvalSettings.from_dict(raw, source=source)
    if settings.ball_samples is None:
        for radius in radii:
            try:
                check_ball_samples(radius, settings, "the evaluation's N(eps)")
            except SpecError as exc:
                raise StudyError(f"{source}: {exc} (or set ball_samples)") from None
    return settings


def _data_options(r: _Reader, dataset: str, raw: Any, base_seed: int) -> DataOptions:
    """The data set's own settings (`[data]`); seeds default to the study's base_seed."""
    if raw is not None and not isinstance(raw, dict):
        raise r.fail("data", f"must be a table of settings of data set '{dataset}'")
    try:
        return parse_options(dataset, raw, base_seed)
    except DataError as exc:
        raise StudyError(f"{r.source}: {exc}") from None


def _sbatch_extra(value: Any) -> dict[str, str]:
    """`cluster.sbatch_extra` with its values as sbatch is given them (strings)."""
    if not isinstance(value, dict):
        raise StudyError("key 'cluster.sbatch_extra': must be a table of sbatch option = value")
    for key, item in value.items():
        if not _SBATCH_KEY_RE.match(key) or not isinstance(item, str | int) \
                or isinstance(item, bool) or any(c in str(item) for c in "\n\r"):
            raise StudyError(f"key 'cluster.sbatch_extra.{key}': must be an sbatch long option "
                             "name (lowercase, e.g. exclude) with a one-line string or integer "
                             "value")
    return {k: str(v) for k, v in value.items()}


def _cluster(source: Path, raw: Any) -> ClusterProfile:
    """The `[cluster]` table, read by its declarations (`ClusterProfile`'s fields)."""
    if raw is None:
        return ClusterProfile()
    if not isinstance(raw, dict):
        raise StudyError(f"{source}: key 'cluster': must be a table")
    try:
        if "array_parallelism" in raw and "max_running" in raw:
            raise StudyError("key 'cluster.array_parallelism': is the old name of "
                             "cluster.max_running: give one")
        table = dict(raw)
        if "sbatch_extra" in table:
            table["sbatch_extra"] = _sbatch_extra(table["sbatch_extra"])
        profile: ClusterProfile = read(ClusterProfile, table, CLUSTER_WORDING,
                                       old=_OLD_CLUSTER_KEYS)
    except StudyError as exc:
        raise StudyError(f"{source}: {exc}") from None
    return profile


def parse_study(text: str, source: Path, root: str | Path | None = None) -> Study:
    """Validate a study given as TOML text; `root` (e.g. --root) replaces the file's root."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{source}: malformed TOML: {exc}") from None
    r = _Reader(source, data)
    r.check_keys(_TOP_KEYS)
    for key in _REQUIRED:
        if key not in data and not (key == "root" and root is not None):
            raise r.fail(key, "missing (required)")
    name = r.string("name")
    assert name is not None
    if not _NAME_RE.match(name):
        raise r.fail("name", "must be 1-64 characters of letters, digits, '_', '.', '-' "
                     f"starting with a letter or digit, got {name!r}")
    dataset = r.get("dataset", "avila")
    if dataset not in names():
        raise r.fail("dataset", f"unknown data set {dataset!r}; allowed: {', '.join(names())}")
    root_value = root if root is not None else r.string("root")
    assert root_value is not None
    if not str(root_value).strip():
        raise r.fail("root", "must be a non-empty path")
    bad = _BAD_PATH.search(str(root_value))
    if bad:
        what = "'%' (SLURM and submitit expand %j, %A, ... in log paths)" if bad.group() == "%" \
            else f"the control character {bad.group()!r}"
        raise StudyError(f"study root {str(root_value)!r} contains {what}; choose another root")
    data_dir = r.string("data_dir")
    if data_dir is not None and _BAD_PATH.search(data_dir.replace("%", "")):
        raise r.fail("data_dir", f"contains a control character: {data_dir!r}")
    methods, radii, trials = _methods(r), _radii(r), r.integer("trials", 0, 1)
    regular_per_radius = r.boolean("regular_per_radius", False)
    settings = _settings(source, data.get("training"))
    sweep = _sweep(r, data.get("training"))
    _check_grid(r, methods, radii, trials, regular_per_radius, settings, sweep)
    evaluation = _evaluation(r, radii)
    base_seed = r.integer("base_seed", 0, 0)
    data_options = _data_options(r, dataset, data.get("data"), base_seed)
    _check_subset(r, dataset, data_options, settings)
    cluster = _cluster(source, data.get("cluster"))
    kernels = {settings.robust_kernel, *dict(sweep).get("robust_kernel", ())}  # swept too
    if "fused" in kernels and cluster.device == "cpu" and Method.ROBUST in methods:
        raise StudyError(f"{source}: key 'training.robust_kernel': 'fused' runs on CUDA and "
                         f"cluster.device is 'cpu'; use 'auto' or 'chunked' on the CPU")
    return Study(
        name=name,
        root=Path(root_value).expanduser().absolute(),
        dataset=dataset,
        methods=methods,
        radii=radii,
        trials=trials,
        base_seed=base_seed,
        regular_per_radius=regular_per_radius,
        settings=settings,
        cluster=cluster,
        data_dir=Path(data_dir).expanduser().absolute() if data_dir else None,
        source=source,
        text=text,
        evaluation=evaluation,
        chain_reduce=r.boolean("chain_reduce", False),
        data_options=data_options,
        sweep=sweep,
    )


def load_study(path: str | Path, root: str | Path | None = None,
               overrides: Sequence[str] = ()) -> Study:
    """Read and validate a study file, with `--set KEY=VALUE` overrides (jobs/overrides.py)
    applied first. Raises StudyError (one line) on any problem."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"{source}: study file not found") from None
    except OSError as exc:
        raise StudyError(f"{source}: cannot read the study file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StudyError(f"{source}: malformed TOML: not UTF-8 text") from None
    if overrides:
        from jobs.overrides import apply_overrides

        text = apply_overrides(text, str(source), overrides)
        try:
            return parse_study(text, source, root)
        except StudyError as exc:
            raise StudyError(f"{exc} (after --set {' --set '.join(overrides)})") from None
    return parse_study(text, source, root)
