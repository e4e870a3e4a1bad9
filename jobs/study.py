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


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how the tasks run. Defaults suit a generic GPU cluster; a study overrides them."""

    partition: str | None = None
    gpus_per_node: int = 1          # hardware: GPUs of one node
    gpus_per_task: int = 1          # what each task asks for (0: CPU-only tasks)
    gpu_mem_gb: float = 16.0        # memory of one GPU: no packed task may need more
    cpus_per_task: int = 4
    mem_gb: float = 16.0
    time_limit_min: int = 720       # per task; longer trials are checkpointed and requeued
    max_array_size: int | None = None  # MaxArraySize (caps the array index + 1); None: the
    #                                    cluster's (`scontrol show config`), else 1001
    max_running: int = 64           # tasks of the whole study running at once, all arrays
    max_pack: int = 8               # at most this many trials per task
    fill_fraction: float = 0.5      # share of the time limit a packed task is planned to use
    max_requeue: int = 30           # preemptions/timeouts a task survives (max_num_timeout)
    signal_delay_s: int = 120       # USR2 this long before the time limit (checkpoint, requeue)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch_extra: dict[str, str] = field(default_factory=dict)  # more `#SBATCH --key=value`
    setup: tuple[str, ...] = ()     # shell lines run before the task (module load ...)
    device: str = "auto"            # torch device inside a task: auto, cuda or cpu
    local_parallelism: int = 1      # tasks at once with the local executor
    device_tflops: float = 15.0     # cost model: sustained fp32 throughput of one task's device
    launch_overhead_ms: float = 0.3  # cost model: fixed time of one sequential pass
    gpu_type: str | None = None     # gres type to request (`--gpus-per-node=TYPE:N`)
    device_model: str | None = None  # what the tasks run on, for estimates (default: gres type)
    calibration: str | None = None  # calibration file of measured rates (cluster.calibration)

    @property
    def array_size_cap(self) -> int:
        """Tasks per array: `max_array_size`, else SLURM's default MaxArraySize."""
        return self.max_array_size if self.max_array_size is not None else DEFAULT_MAX_ARRAY_SIZE

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Study:
    """A validated study file. `fingerprint` covers what is trained, not where it runs."""

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
        return hashlib.sha256(json.dumps(self.science(), sort_keys=True).encode()).hexdigest()

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

    def number(self, key: str, default: float, *, minimum: float = 0.0,
               maximum: float = math.inf) -> float:
        value = self.table.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) \
                or not math.isfinite(value) or not minimum < value <= maximum:
            bound = f"in ({minimum:g}, {maximum:g}]" if math.isfinite(maximum) else f"> {minimum:g}"
            raise self.fail(key, f"must be a number {bound}, got {value!r}")
        return float(value)

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
    except TypeError as exc:  # a value of the wrong type that from_dict did not catch
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


def _optional_str(r: _Reader, key: str) -> str | None:
    value = r.string(key)
    if value is not None and any(c in value for c in "\n\r"):
        raise r.fail(key, "must be a single line")
    return value


def _cluster(source: Path, raw: Any) -> ClusterProfile:
    if raw is None:
        return ClusterProfile()
    if not isinstance(raw, dict):
        raise StudyError(f"{source}: key 'cluster': must be a table")
    r = _Reader(source, raw, "cluster.")
    d = ClusterProfile()
    r.check_keys([f.name for f in fields(ClusterProfile)] + ["array_parallelism"])
    if "array_parallelism" in raw and "max_running" in raw:
        raise r.fail("array_parallelism", "is the old name of cluster.max_running: give one")
    running_key = "array_parallelism" if "array_parallelism" in raw else "max_running"
    extra = r.get("sbatch_extra", {})
    if not isinstance(extra, dict):
        raise r.fail("sbatch_extra", "must be a table of sbatch option = value")
    for key, value in extra.items():
        if not _SBATCH_KEY_RE.match(key) or not isinstance(value, str | int) \
                or isinstance(value, bool) or any(c in str(value) for c in "\n\r"):
            raise r.fail(f"sbatch_extra.{key}", "must be an sbatch long option name "
                         "(lowercase, e.g. exclude) with a one-line string or integer value")
    setup = r.get("setup", [])
    if not isinstance(setup, list) or not all(isinstance(s, str) and "\n" not in s
                                              for s in setup):
        raise r.fail("setup", "must be a list of one-line shell commands")
    device = r.get("device", d.device)
    if device not in ("auto", "cuda", "cpu"):
        raise r.fail("device", f"must be 'auto', 'cuda' or 'cpu', got {device!r}")
    profile = ClusterProfile(
        partition=_optional_str(r, "partition"),
        gpus_per_node=r.integer("gpus_per_node", d.gpus_per_node, 0, MAX_GPUS_PER_NODE),
        gpus_per_task=r.integer("gpus_per_task", d.gpus_per_task, 0, MAX_GPUS_PER_NODE),
        gpu_mem_gb=r.number("gpu_mem_gb", d.gpu_mem_gb, maximum=MAX_GPU_MEM_GB),
        cpus_per_task=r.integer("cpus_per_task", d.cpus_per_task, 1, MAX_CPUS_PER_TASK),
        mem_gb=r.number("mem_gb", d.mem_gb, maximum=MAX_MEM_GB),
        time_limit_min=r.integer("time_limit_min", d.time_limit_min, 1, MAX_TIME_LIMIT_MIN),
        max_array_size=(r.integer("max_array_size", 0, 1, MAX_ARRAY_SIZE) if "max_array_size" in raw
                        else None),
        max_running=r.integer(running_key, d.max_running, 1, MAX_GRID_TRIALS),
        max_pack=r.integer("max_pack", d.max_pack, 1, MAX_PACK),
        fill_fraction=r.number("fill_fraction", d.fill_fraction, maximum=1.0),
        max_requeue=r.integer("max_requeue", d.max_requeue, 0, MAX_REQUEUE),
        signal_delay_s=r.integer("signal_delay_s", d.signal_delay_s, 1, MAX_SIGNAL_DELAY_S),
        account=_optional_str(r, "account"),
        qos=_optional_str(r, "qos"),
        constraint=_optional_str(r, "constraint"),
        sbatch_extra={k: str(v) for k, v in extra.items()},
        setup=tuple(setup),
        device=device,
        local_parallelism=r.integer("local_parallelism", d.local_parallelism, 1,
                                    MAX_CPUS_PER_TASK),
        device_tflops=r.number("device_tflops", d.device_tflops, minimum=1e-3, maximum=1e6),
        launch_overhead_ms=r.number("launch_overhead_ms", d.launch_overhead_ms, maximum=1e4),
        gpu_type=_optional_str(r, "gpu_type"),
        device_model=_optional_str(r, "device_model"),
        calibration=_optional_str(r, "calibration"),
    )
    if profile.gpu_type is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", profile.gpu_type):
        raise r.fail("gpu_type", f"must be a gres type name (e.g. 'h100'), got "
                     f"{profile.gpu_type!r}")
    if profile.gpus_per_task > profile.gpus_per_node:
        raise r.fail("gpus_per_task", f"asks for {profile.gpus_per_task} GPUs but a node has "
                     f"{profile.gpus_per_node} (cluster.gpus_per_node)")
    if profile.signal_delay_s >= profile.time_limit_min * 60:
        raise r.fail("signal_delay_s", "must be shorter than cluster.time_limit_min")
    try:  # whatever the executor: `plan` and a local run refuse what sbatch would be given
        check_sbatch_extra(profile.sbatch_extra)
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
