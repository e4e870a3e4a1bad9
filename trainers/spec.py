"""What one training run is: the method, its radius, its seed and every hyper-parameter.

Every paper constant is a field here with the paper's value as default, so a study can change any
of them; specs are frozen and round-trip through JSON (they are written next to every checkpoint).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from common.errors import InputError
from common.settings import Wording, check_fields, read, setting
from trainers.datasets import DataError, DataOptions, get_source, names, parse_options
from trainers.kernels.precision import Precision


class Method(str, Enum):
    REGULAR = "regular"
    ROBUST = "robust"
    ADVERSARIAL = "adversarial"
    LANGEVIN = "langevin"


class TempSchedule(str, Enum):
    """Which counter drives the temperature decay: optimizer steps (paper) or epochs."""

    STEP = "step"
    EPOCH = "epoch"


class SpecError(InputError, ValueError):
    """A spec or settings value that cannot be trained; the message names the field and the fix."""


# sane bounds: beyond them a run is a typo, not a study (and the arithmetic overflows)
MAX_BALL_SAMPLES = 10**8   # N(eps) per point: the paper's largest radius (0.3) needs ~195,000
MAX_RADIUS = 1000.0        # the features are standardized: a larger ball covers all the data
# the robust step's pass 1 (trainers.smoothmax.Kernel, and "auto": the device's measured best)
ROBUST_KERNELS = ("auto", "chunked", "fused")
ROBUST_PRECISIONS = tuple(p.value for p in Precision)
MAX_HIDDEN = 16384         # 8 -> H -> H -> 12: H = 16384 is ~270 M weights already
MAX_TRAIN_ROWS = 100_000_000  # train_subset: more rows than any data set here has (MNIST: 60,000)


class BallSampling(Protocol):
    """The three constants of N(eps): training (`TrainSettings`) and evaluation
    (`jobs.evaluation.EvalSettings`) each carry their own values of them."""

    @property
    def n_base(self) -> int: ...
    @property
    def n_growth(self) -> float: ...
    @property
    def n_eps_scale(self) -> float: ...


def n_ball_samples(radius: float, settings: BallSampling | None = None) -> int:
    """N(eps) = int(n_base * n_growth ** (eps / n_eps_scale)), the paper's number of ball samples
    per point (616, 100 and 0.24: `TrainSettings`' defaults, used when `settings` is None)."""
    s = settings or TrainSettings()
    return int(s.n_base * s.n_growth ** (radius / s.n_eps_scale))


def check_ball_samples(radius: float, settings: BallSampling, what: str = "N(eps)") -> None:
    """SpecError when `n_ball_samples(radius, settings)` exceeds MAX_BALL_SAMPLES; computed in
    logarithms, so a huge radius is reported instead of overflowing."""
    n_base, n_growth, n_eps_scale = settings.n_base, settings.n_growth, settings.n_eps_scale
    try:
        log10_n = math.log10(n_base) + radius / n_eps_scale * math.log10(n_growth)
    except (ValueError, OverflowError):
        log10_n = math.inf
    if log10_n <= math.log10(MAX_BALL_SAMPLES):
        return
    implied = f"~1e{log10_n:.0f}" if math.isfinite(log10_n) and log10_n < 1e6 else "an overflow"
    slope = math.log10(n_growth) / n_eps_scale
    top = (math.log10(MAX_BALL_SAMPLES) - math.log10(n_base)) / slope if slope > 0 else -1.0
    fix = f"use a radius <= {top:.3g}" if top > 0 else "lower n_base"
    raise SpecError(f"radius {radius:g} gives {what} = {implied} ball samples per point "
                    f"(int({n_base:g} * {n_growth:g} ** (eps / {n_eps_scale:g}))), more than the "
                    f"limit {MAX_BALL_SAMPLES:,}; {fix}")


def _too_wide(hidden: int) -> str:
    return (f"must be <= {MAX_HIDDEN:,} (a {hidden:,}-wide MLP has {2 * hidden ** 2 / 1e9:.3g} G "
            f"weights), got {hidden!r}")


def _too_many_rows(rows: int) -> str:
    return f"must be <= {MAX_TRAIN_ROWS:,} rows, got {rows:,}"


WORDING = Wording(  # how `[training]` refusals read
    error=SpecError, key=lambda name: f"setting '{name}'", finite_apart=True,
    unknown=lambda unknown, allowed: f"unknown training setting(s) {unknown}; "
                                     f"allowed: {allowed}")


@dataclass(frozen=True)
class TrainSettings:
    """Every constant of training, with the paper's value as default; bounds, choices and the
    one-line doc of each are declared on its field (common.settings), where the study reader, the
    checks and the study template (`drosweep new`) all read them."""

    # optimisation (all methods)
    epochs: int = setting(1500, "passes over the training rows", minimum=1)
    batch_size: int = setting(100, "training rows per optimizer step", minimum=1)
    lr: float = setting(0.2, "SGD learning rate", minimum=0, above=True)
    lr_step_size: int = setting(50000, "optimizer steps between learning-rate decays", minimum=1)
    lr_gamma: float = setting(0.1, "factor of each learning-rate decay", minimum=0, above=True,
                              maximum=1)
    hidden: int = setting(200, "units of each of the MLP's two hidden layers", minimum=1,
                          maximum=MAX_HIDDEN, over=_too_wide)
    # robust: N(eps) = int(n_base * n_growth ** (eps / n_eps_scale)) uniform points in the ball
    n_base: int = setting(616, "robust: N(eps) = int(n_base * n_growth ** (eps / n_eps_scale)) "
                          "ball samples per point", minimum=1)
    n_growth: float = setting(100.0, "robust: growth of N(eps) over n_eps_scale of radius",
                              minimum=0, above=True)
    n_eps_scale: float = setting(0.24, "robust: the radius over which N(eps) grows n_growth-fold",
                                 minimum=0, above=True)
    # smoothed max (robust, langevin): T decays linearly temp_start -> temp_end over temp_steps
    temp_start: float = setting(1.0, "smoothed max: first temperature T", minimum=0, above=True)
    temp_end: float = setting(1e-4, "smoothed max: last temperature T", minimum=0, above=True)
    temp_steps: int = setting(1500, "smoothed max: steps (or epochs) of the linear decay of T",
                              minimum=1)
    temp_schedule: TempSchedule = setting(TempSchedule.STEP, "what counts temp_steps: "
                                          "optimizer steps (the paper's) or epochs")
    # samples per chunk of the smoothed max: bounds its memory, whatever N is. On the CPU
    # `chunk_size`; on CUDA `cuda_chunk_size`, larger because a GPU needs big launches to be busy
    # (robust eps=0.3 on an H200: 2.5x faster at 2^20 than at 2^16, ~3 GiB). Samples do not
    # depend on either (trainers.rng); the loss only up to float rounding.
    chunk_size: int = setting(65536, "samples per chunk of the smoothed max on the CPU "
                              "(bounds memory; no result depends on it)", minimum=1)
    cuda_chunk_size: int = setting(1 << 20, "samples per chunk of the smoothed max on CUDA",
                                   minimum=1)
    # a sample whose softmax weight is below this gets no backward (dropped mass <= N * threshold)
    prune_threshold: float = setting(1e-13, "samples of softmax weight below this get no "
                                     "backward (dropped mass <= N * threshold)", minimum=0,
                                     maximum=1e-3, below=True, bounds="[0, 1e-3)")
    # adversarial: L-inf PGD, step = pgd_step_factor * eps / pgd_steps, from adv_start_epoch on
    pgd_steps: int = setting(40, "adversarial: L-inf PGD steps per batch", minimum=1)
    pgd_step_factor: float = setting(2.5, "adversarial: PGD step = pgd_step_factor * eps / "
                                     "pgd_steps", minimum=0, above=True)
    adv_start_epoch: int = setting(3, "adversarial: first epoch trained on PGD points", minimum=0)
    # langevin: trajectory of langevin_points points, step = langevin_step_factor * eps
    langevin_points: int = setting(400, "langevin: points of each trajectory", minimum=1)
    langevin_step_factor: float = setting(4.0 / 50.0, "langevin: step = langevin_step_factor * "
                                          "eps", minimum=0, above=True)
    langevin_noise: float = setting(0.5, "langevin: noise of each step", minimum=0)
    # stopping and checkpoints
    max_steps: int | None = setting(None, "stop after this many optimizer steps (unset: all "
                                    "epochs)", minimum=1)
    checkpoint_every: int = setting(2000, "optimizer steps between checkpoints", minimum=1)
    checkpoint_every_s: float = setting(300.0, "seconds between checkpoints", minimum=0,
                                        above=True)
    train_subset: int | None = setting(None, "train on the first this many training rows after "
                                       "a seeded shuffle (unset: all)", minimum=1,
                                       maximum=MAX_TRAIN_ROWS, over=_too_many_rows)
    # robust step's pass 1: "chunked" (torch, every device), "fused" (one Triton kernel over the
    # ball samples, CUDA), "auto" (the measured best for the device: today "chunked" everywhere,
    # until a GPU measurement in this repository shows the fused kernel faster)
    robust_kernel: str = setting("auto", "robust step's pass 1: chunked (torch, any device), "
                                 "fused (Triton, CUDA) or auto (the device's measured best)",
                                 choices=ROBUST_KERNELS)
    # the fused kernel's products: "ieee" (fp32), "tf32x3" or "bf16x3" (tensor cores; every
    # sample the certificate cannot rule out is recomputed in fp32: the fp32 path's kept set)
    robust_precision: str = setting("ieee", "fused kernel's products: ieee (fp32), tf32x3 or "
                                    "bf16x3 (tensor cores, certified against fp32)",
                                    choices=ROBUST_PRECISIONS)
    allow_tf32_override: bool = setting(False, "train even when TORCH_ALLOW_TF32_CUBLAS_OVERRIDE "
                                        "is set (TF32 matmuls)")
    # on CUDA, capture each step's static stage once as a CUDA graph and replay it (bit-identical
    # to eager: trainers.graphs); false runs every step eagerly. Changes no result.
    cuda_graphs: bool = setting(True, "on CUDA, replay each step's static stage as a CUDA graph "
                                "(bit-identical to eager)")

    def validate(self) -> None:
        """SpecError naming the first setting its declaration refuses."""
        check_fields(self, WORDING)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["temp_schedule"] = self.temp_schedule.value
        for name in ("robust_kernel", "robust_precision"):  # written only when changed: files
            if d[name] == getattr(TrainSettings, name):       # from before them still match
                del d[name]
        if self.cuda_graphs:  # likewise: written only when switched off
            del d["cuda_graphs"]
        if self.cuda_chunk_size == TrainSettings.cuda_chunk_size:  # likewise: only when changed
            del d["cuda_chunk_size"]
        return d

    def chunk_for(self, device_type: str) -> int:
        """Samples per chunk of the smoothed max on a device of this type ('cpu', 'cuda')."""
        return self.cuda_chunk_size if device_type == "cuda" else self.chunk_size

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        settings: TrainSettings = read(cls, _without_removed(data), WORDING)
        return settings


_REMOVED = {
    "fast_sampling": "its bf16 values could prune the true maximum",
    "preselect": "its bf16 bound kept every sample at T = 1e-4 and never paid",
}


def _without_removed(data: dict[str, Any]) -> dict[str, Any]:
    """Removed settings: false (their default, the exact fp32 pass) is what every run computes
    and is dropped; true is refused with the setting that replaces them."""
    for name, why in _REMOVED.items():
        if name in data and data[name] is not False:
            raise SpecError(f"setting '{name}' was removed ({why}); use robust_kernel = 'fused' "
                            f"with robust_precision = 'tf32x3' or 'bf16x3' (tensor cores, "
                            f"certified against fp32) or drop the line")
    return {key: value for key, value in data.items() if key not in _REMOVED}


@dataclass(frozen=True)
class TrainSpec:
    """One trial to train. `dataset` names a data set of the registry (trainers.datasets) and
    `data_options` holds its settings (the study's `[data]`); where fetched files live is not part
    of the spec (it differs between machines) and is passed to `train` separately."""

    method: Method
    radius: float
    seed: int
    settings: TrainSettings = field(default_factory=TrainSettings)
    dataset: str = "avila"
    data_options: DataOptions = field(default_factory=DataOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.method, Method):
            try:
                object.__setattr__(self, "method", Method(self.method))
            except ValueError:
                raise SpecError(f"unknown method {self.method!r}; "
                                f"allowed: {[m.value for m in Method]}") from None
        if type(self.data_options) is DataOptions and self.dataset in names():
            # no settings given: the data set's defaults (checked by `validate`)
            object.__setattr__(self, "data_options", get_source(self.dataset).options())

    def validate(self) -> None:
        if not isinstance(self.radius, int | float) or isinstance(self.radius, bool) \
                or not math.isfinite(self.radius) or self.radius < 0:
            raise SpecError(f"radius must be a finite number >= 0, got {self.radius!r}")
        if self.method is not Method.REGULAR and self.radius <= 0:
            raise SpecError(f"method '{self.method.value}' needs a radius > 0, got {self.radius!r}")
        if self.radius > MAX_RADIUS:
            raise SpecError(f"radius must be <= {MAX_RADIUS:g} (the features are standardized: "
                            f"a larger ball covers all the data), got {self.radius:g}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise SpecError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.dataset not in names():
            raise SpecError(f"dataset must be one of {', '.join(names())}, got {self.dataset!r}")
        options = get_source(self.dataset).options
        if not isinstance(self.data_options, options):
            raise SpecError(f"data set {self.dataset!r} takes {options.__name__} settings, got "
                            f"{type(self.data_options).__name__}")
        try:
            self.data_options.validate()
        except DataError as exc:
            raise SpecError(str(exc)) from None
        self.settings.validate()
        if self.method is Method.ROBUST:
            check_ball_samples(self.radius, self.settings)

    @property
    def n_samples(self) -> int:
        """Points per training point in the smoothed max (robust: N(eps); langevin: trajectory)."""
        if self.method is Method.ROBUST:
            return n_ball_samples(self.radius, self.settings)
        if self.method is Method.LANGEVIN:
            return self.settings.langevin_points
        return 1

    def to_dict(self) -> dict[str, Any]:
        out = {"method": self.method.value, "radius": self.radius, "seed": self.seed,
               "dataset": self.dataset, "settings": self.settings.to_dict()}
        options = self.data_options.to_dict()
        if options:  # written only for data sets with settings: Avila's specs keep their bytes
            out["data"] = options
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSpec:
        unknown = sorted(set(data) - {"method", "radius", "seed", "dataset", "settings", "data"})
        if unknown:
            raise SpecError(f"unknown spec field(s) {unknown}")
        dataset = str(data.get("dataset", "avila"))
        try:
            options = parse_options(dataset, data.get("data"))
        except DataError as exc:
            raise SpecError(str(exc)) from None
        spec = cls(method=Method(data["method"]), radius=float(data["radius"]),
                   seed=int(data["seed"]), dataset=dataset,
                   settings=TrainSettings.from_dict(data.get("settings", {})),
                   data_options=options)
        spec.validate()
        return spec


def pack_key(spec: TrainSpec) -> tuple[Any, ...]:
    """Trials with equal keys may train as one pack: everything but the seed is the same."""
    return (spec.method, spec.radius, spec.dataset, spec.data_options, spec.settings)
