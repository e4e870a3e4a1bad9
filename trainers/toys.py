"""Drawing the original code's 2-D toy sets (their settings and registration:
trainers/datasets/toys.py).

A draw is a pure function of the settings, seed included: train and test come from two
independent numpy PCG64 streams seeded by a `SeedSequence` of (seed, set, split), so a study's
data set is the same on every machine, in every trial and in the reduction, and more test points
never change the training points. The shapes are the original's: noise around a curve or a
centre, half of the points per class (`moons`: the side of the circle decides).
"""

from __future__ import annotations

import hashlib

import numpy as np

from trainers.datasets.toys import (
    DoughnutOptions,
    GaussiansOptions,
    MixOptions,
    MoonsOptions,
    SawOptions,
    ToyOptions,
)

Points = tuple[np.ndarray, np.ndarray]   # (n, 2) float64 points, (n,) int64 labels


def _generator(kind: str, seed: int, split: str) -> np.random.Generator:
    tag = int.from_bytes(hashlib.sha256(f"toy:{kind}:{split}".encode()).digest()[:8], "little")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, tag])))


def _unit_circle(g: np.random.Generator, n: int) -> np.ndarray:
    """Uniform on the unit circle: a normalised Gaussian, as the original draws it."""
    v = g.standard_normal((n, 2))
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0)


def _saw_curve(x: np.ndarray) -> np.ndarray:
    """The original's saw tooth on [0, 3): up on [0, 1), down on [1, 2), up on [2, 3)."""
    return np.where(x < 1, x, np.where(x < 2, 2 - x, x - 2))


def _saw_points(g: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    x = g.random(n) * 3
    return np.stack([x, _saw_curve(x)], axis=1) + g.standard_normal((n, 2)) * sigma


def _labels(first: int, n_first: int, n_second: int) -> np.ndarray:
    """`n_first` labels `first`, then `n_second` of the other class."""
    return np.repeat(np.array([first, 1 - first], dtype=np.int64), [n_first, n_second])


def _gaussians(o: GaussiansOptions, g: np.random.Generator, n: int) -> Points:
    n1 = n // 2
    x1 = g.standard_normal((n1, 2)) * o.sigma1 + np.array([o.mean1_x, o.mean1_y])
    x0 = g.standard_normal((n - n1, 2)) * o.sigma0 + np.array([o.mean0_x, o.mean0_y])
    return np.concatenate([x1, x0]), _labels(1, n1, n - n1)


def _doughnut(o: DoughnutOptions, g: np.random.Generator, n: int) -> Points:
    n1 = n // 2
    inner = g.standard_normal((n1, 2)) * o.sigma_inner
    ring = g.standard_normal((n - n1, 2)) * o.sigma_ring + _unit_circle(g, n - n1) * o.radius
    return np.concatenate([inner, ring]), _labels(1, n1, n - n1)


def _moons(o: MoonsOptions, g: np.random.Generator, n: int) -> Points:
    x = g.standard_normal((n, 2)) * o.sigma + _unit_circle(g, n) * o.radius
    upper = x[:, 1] > 0
    x[upper] += np.array([o.shift_x, o.shift_y])
    return x, upper.astype(np.int64)


def _saw(o: SawOptions, g: np.random.Generator, n: int) -> Points:
    n1 = n // 2
    x0, x1 = _saw_points(g, n - n1, o.sigma), _saw_points(g, n1, o.sigma)
    return np.concatenate([x0, x1 + np.array([o.shift_x, o.shift_y])]), \
        _labels(0, n - n1, n1)


def _mix(o: MixOptions, g: np.random.Generator, n: int) -> Points:
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
