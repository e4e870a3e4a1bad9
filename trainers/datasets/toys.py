"""The original code's 2-D toy sets: `moons`, `gaussians`, `doughnut`, `saw`, `mix` (two classes).

Each set's `[data]` settings default to the values the original's experiments draw with (its
`select_base`): point counts, noise deviations, radii and shifts in the raw plane; `seed` defaults
to the study's base_seed. The points are drawn by `draw_toy` (numpy, imported only when a set is
loaded) and standardized with the training points' statistics, as Avila is, so a radius ε is a
share of the data's spread along each axis. Class 1 is the first Gaussian (`gaussians`), the inner
disc (`doughnut`), the upper moon (`moons`), the shifted curve (`saw`) or the cloud (`mix`).

A draw is a pure function of the settings, seed included: train and test come from two
independent numpy PCG64 streams seeded by a `SeedSequence` of (seed, set, split), so a study's
data set is the same on every machine, in every trial and in the reduction, and more test points
never change the training points. The shapes are the original's: noise around a curve or a
centre, half of the points per class (`moons`: the side of the circle decides).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.base import Dataset, from_arrays
from trainers.datasets.registry import DataOptions, DataSource, Shape, option_error, register

if TYPE_CHECKING:
    import numpy as np

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


Points = tuple["np.ndarray", "np.ndarray"]   # (n, 2) float64 points, (n,) int64 labels


def _generator(kind: str, seed: int, split: str) -> np.random.Generator:
    import numpy as np

    tag = int.from_bytes(hashlib.sha256(f"toy:{kind}:{split}".encode()).digest()[:8], "little")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, tag])))


def _unit_circle(g: np.random.Generator, n: int) -> np.ndarray:
    """Uniform on the unit circle: a normalised Gaussian, as the original draws it."""
    import numpy as np

    v = g.standard_normal((n, 2))
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0)


def _saw_curve(x: np.ndarray) -> np.ndarray:
    """The original's saw tooth on [0, 3): up on [0, 1), down on [1, 2), up on [2, 3)."""
    import numpy as np

    return np.where(x < 1, x, np.where(x < 2, 2 - x, x - 2))


def _saw_points(g: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    import numpy as np

    x = g.random(n) * 3
    return np.stack([x, _saw_curve(x)], axis=1) + g.standard_normal((n, 2)) * sigma


def _labels(first: int, n_first: int, n_second: int) -> np.ndarray:
    """`n_first` labels `first`, then `n_second` of the other class."""
    import numpy as np

    return np.repeat(np.array([first, 1 - first], dtype=np.int64), [n_first, n_second])


def _gaussians(o: GaussiansOptions, g: np.random.Generator, n: int) -> Points:
    import numpy as np

    n1 = n // 2
    x1 = g.standard_normal((n1, 2)) * o.sigma1 + np.array([o.mean1_x, o.mean1_y])
    x0 = g.standard_normal((n - n1, 2)) * o.sigma0 + np.array([o.mean0_x, o.mean0_y])
    return np.concatenate([x1, x0]), _labels(1, n1, n - n1)


def _doughnut(o: DoughnutOptions, g: np.random.Generator, n: int) -> Points:
    import numpy as np

    n1 = n // 2
    inner = g.standard_normal((n1, 2)) * o.sigma_inner
    ring = g.standard_normal((n - n1, 2)) * o.sigma_ring + _unit_circle(g, n - n1) * o.radius
    return np.concatenate([inner, ring]), _labels(1, n1, n - n1)


def _moons(o: MoonsOptions, g: np.random.Generator, n: int) -> Points:
    import numpy as np

    x = g.standard_normal((n, 2)) * o.sigma + _unit_circle(g, n) * o.radius
    upper = x[:, 1] > 0
    x[upper] += np.array([o.shift_x, o.shift_y])
    return x, upper.astype(np.int64)


def _saw(o: SawOptions, g: np.random.Generator, n: int) -> Points:
    import numpy as np

    n1 = n // 2
    x0, x1 = _saw_points(g, n - n1, o.sigma), _saw_points(g, n1, o.sigma)
    return np.concatenate([x0, x1 + np.array([o.shift_x, o.shift_y])]), \
        _labels(0, n - n1, n1)


def _mix(o: MixOptions, g: np.random.Generator, n: int) -> Points:
    import numpy as np

    n1 = n // 2
    x0 = _saw_points(g, n - n1, o.sigma)
    x1 = g.standard_normal((n1, 2)) * (o.sigma * o.cloud_factor)
    return np.concatenate([x0, x1 + np.array([o.shift_x, o.shift_y])]), \
        _labels(0, n - n1, n1)


def _points(o: ToyOptions, g: np.random.Generator, n: int) -> Points:
    if isinstance(o, MoonsOptions):
        return _moons(o, g, n)
    if isinstance(o, GaussiansOptions):
        return _gaussians(o, g, n)
    if isinstance(o, DoughnutOptions):
        return _doughnut(o, g, n)
    if isinstance(o, SawOptions):
        return _saw(o, g, n)
    if isinstance(o, MixOptions):
        return _mix(o, g, n)
    raise TypeError(f"no toy set draws with {type(o).__name__}")


def draw_toy(options: ToyOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw (unstandardized) train points, train labels, test points, test labels."""
    kind = type(options).__name__
    x_train, y_train = _points(options, _generator(kind, options.seed, "train"), options.n_train)
    x_test, y_test = _points(options, _generator(kind, options.seed, "test"), options.n_test)
    return x_train, y_train, x_test, y_test


def _load(options: ToyOptions, folder: Path | None) -> Dataset:
    x_train, y_train, x_test, y_test = draw_toy(options)
    return from_arrays(x_train, y_train, x_test, y_test, TOY_CLASSES)


for _name, _options in TOY_OPTIONS.items():
    register(DataSource(
        name=_name,
        description="2-D toy set of the original code: "
                    + " ".join((_options.__doc__ or "").split()),
        load=_load, options=_options, sizes=_shape, n_features=2, n_classes=2,
        classes=TOY_CLASSES, generated=True))
