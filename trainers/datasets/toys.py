"""The original code's 2-D toy sets: `moons`, `gaussians`, `doughnut`, `saw`, `mix` (two classes).

Each set's `[data]` settings default to the values the original's experiments draw with (its
`select_base`): point counts, noise deviations, radii and shifts in the raw plane; `seed` defaults
to the study's base_seed. The points are drawn by `trainers.toys` (numpy, imported only when a set
is loaded) and standardized with the training points' statistics, as Avila is, so a radius ε is a
share of the data's spread along each axis. Class 1 is the first Gaussian (`gaussians`), the inner
disc (`doughnut`), the upper moon (`moons`), the shifted curve (`saw`) or the cloud (`mix`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.registry import DataOptions, DataSource, Shape, option_error, register

if TYPE_CHECKING:
    from trainers.data import Dataset

TOY_CLASSES = ("0", "1")
MAX_TOY_POINTS = 10_000_000   # per split: beyond it a study is a typo, and memory runs out


@dataclass(frozen=True)
class ToyOptions(DataOptions):
    """What every toy set has: its seed and its point counts."""

    seed: int = 0
    n_train: int = 1000
    n_test: int = 40

    def validate(self) -> None:
        if self.seed < 0:
            raise option_error("seed", f"must be an integer >= 0, got {self.seed!r}")
        for name in ("n_train", "n_test"):
            value = getattr(self, name)
            if not 2 <= value <= MAX_TOY_POINTS:
                raise option_error(name, f"must be an integer in [2, {MAX_TOY_POINTS:,}], "
                                   f"got {value!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float) and not math.isfinite(value):
                raise option_error(f.name, f"must be finite, got {value!r}")
            if f.name.startswith(("sigma", "cloud")) and not value > 0:
                raise option_error(f.name, f"must be > 0, got {value!r}")
            if f.name == "radius" and value < 0:
                raise option_error(f.name, f"must be >= 0, got {value!r}")


@dataclass(frozen=True)
class GaussiansOptions(ToyOptions):
    """Two Gaussian clouds: class 1 around mean1, class 0 around mean0."""

    n_train: int = 1000
    n_test: int = 40
    sigma1: float = 0.5
    sigma0: float = 0.5
    mean1_x: float = 1.0
    mean1_y: float = 1.0
    mean0_x: float = 0.0
    mean0_y: float = 0.0


@dataclass(frozen=True)
class DoughnutOptions(ToyOptions):
    """A Gaussian disc (class 1) inside a noisy ring of radius `radius` (class 0)."""

    n_train: int = 1000
    n_test: int = 300
    sigma_inner: float = 0.3
    sigma_ring: float = 0.3
    radius: float = 2.0


@dataclass(frozen=True)
class MoonsOptions(ToyOptions):
    """A noisy circle of radius `radius`, its upper half (class 1) moved by the shift."""

    n_train: int = 2000
    n_test: int = 3000
    sigma: float = 0.2
    radius: float = 2.0
    shift_x: float = 2.0
    shift_y: float = -1.0


@dataclass(frozen=True)
class SawOptions(ToyOptions):
    """Two noisy copies of a saw tooth on [0, 3), class 1 moved by the shift."""

    n_train: int = 2000
    n_test: int = 3000
    sigma: float = 0.05
    shift_x: float = 0.0
    shift_y: float = 1.0


@dataclass(frozen=True)
class MixOptions(ToyOptions):
    """The saw tooth (class 0) against a Gaussian cloud of deviation sigma * cloud_factor
    around the shift (class 1)."""

    n_train: int = 2000
    n_test: int = 3000
    sigma: float = 0.05
    cloud_factor: float = 3.0
    shift_x: float = 1.5
    shift_y: float = 1.5


TOY_OPTIONS: dict[str, type[ToyOptions]] = {
    "moons": MoonsOptions, "gaussians": GaussiansOptions, "doughnut": DoughnutOptions,
    "saw": SawOptions, "mix": MixOptions}


def _shape(options: ToyOptions) -> Shape:
    return Shape(n_features=2, n_classes=2, train_rows=options.n_train,
                 test_rows=options.n_test)


def _load(options: ToyOptions, folder: Path | None) -> Dataset:
    from trainers.data import from_arrays
    from trainers.toys import draw_toy

    x_train, y_train, x_test, y_test = draw_toy(options)
    return from_arrays(x_train, y_train, x_test, y_test, TOY_CLASSES)


for _name, _options in TOY_OPTIONS.items():
    register(DataSource(
        name=_name,
        description="2-D toy set of the original code: "
                    + " ".join((_options.__doc__ or "").split()),
        load=_load, options=_options, sizes=_shape, n_features=2, n_classes=2,
        classes=TOY_CLASSES, generated=True))
