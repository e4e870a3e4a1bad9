"""All metrics of one trained model, at one or several evaluation radii.

Radius-free metrics (clean accuracy, Lipschitz estimates) are computed once per model and repeated
on every radius; every random draw is a pure function of (settings seed, the model's key, the
radius, the metric, its position): counter streams (trainers.rng) for the ball samples, the PGD
start and the generalized ReLU, a CPU generator for the Lipschitz search (run on the CPU). So an
evaluation is reproducible, independent of the order in which models are evaluated, and draws
the same samples on the CPU and on CUDA.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from jobs.evaluation import EvalSettings
from reduce.accuracy import ball_accuracy, clean_accuracy, pgd_accuracy
from reduce.lipschitz import SearchSettings, lipschitz_estimates
from trainers import rng
from trainers.model import MLP
from trainers.rng import Purpose

CLEAN = "clean_accuracy"
WORST = "worst_case_accuracy"
MEAN = "mean_accuracy"
PGD = "pgd_accuracy"
LIP_LOWER = "lipschitz_lower"
LIP_SEARCH = "lipschitz_search"
LIP_UPPER = "lipschitz_upper"
METRICS = (CLEAN, WORST, MEAN, PGD, LIP_LOWER, LIP_SEARCH, LIP_UPPER)


def metrics_of(settings: EvalSettings) -> tuple[str, ...]:
    """The metrics an evaluation under `settings` computes."""
    return METRICS if settings.lipschitz else (CLEAN, WORST, MEAN, PGD)


def stream_seed(seed: int, *parts: object) -> int:
    """A stable 63-bit seed per purpose, so one draw never shifts another."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def select_test_points(x: Tensor, y: Tensor, settings: EvalSettings) -> tuple[Tensor, Tensor]:
    """The evaluated test points: all, or a seeded subset shared by every model."""
    if settings.test_subset is None or settings.test_subset >= len(y):
        return x, y
    gen = torch.Generator().manual_seed(stream_seed(settings.seed, "test_subset"))
    idx = torch.randperm(len(y), generator=gen)[:settings.test_subset].to(x.device)
    return x[idx], y[idx]


@dataclass(frozen=True)
class ModelEvaluation:
    metrics: dict[float, dict[str, float]]  # radius -> metric -> value
    ball_forwards: int


def evaluate_model(model: MLP, x: Tensor, y: Tensor, radii: Sequence[float],
                   settings: EvalSettings, key: str) -> ModelEvaluation:
    """Every metric of `model` on the test points (x, y) at each radius in `radii`."""
    dev = x.device
    model = model.to(dev).eval()
    # the generalized ReLU's subgradient draws in PGD
    model.set_relu_key(rng.stream_key(settings.seed, Purpose.EVAL_RELU, key))
    clean = clean_accuracy(model, x, y, settings.batch_size)
    shared = {CLEAN: clean}
    if settings.lipschitz:
        search = SearchSettings(population=settings.ga_population,
                                generations=settings.ga_generations, elite=settings.ga_elite,
                                tournament=settings.ga_tournament, mutation=settings.ga_mutation,
                                polish=settings.ga_polish)
        lip = lipschitz_estimates(model, x, search,
                                  torch.Generator().manual_seed(stream_seed(settings.seed, key,
                                                                            "lipschitz")),
                                  settings.batch_size)
        shared.update({LIP_LOWER: lip.lower, LIP_SEARCH: lip.search, LIP_UPPER: lip.upper})
    out: dict[float, dict[str, float]] = {}
    forwards = 0
    for radius in radii:
        ball = ball_accuracy(model, x, y, radius, settings.n_worst(radius),
                             settings.n_mean(radius), chunk_size=settings.chunk_size,
                             key=rng.stream_key(settings.seed, Purpose.EVAL_BALL, key, radius))
        forwards += ball.forwards
        pgd = pgd_accuracy(model, x, y, radius, steps=settings.pgd_steps,
                           step_size=settings.pgd_step, random_start=settings.pgd_random_start,
                           key=rng.stream_key(settings.seed, Purpose.EVAL_PGD, key, radius),
                           batch_size=settings.batch_size)
        out[float(radius)] = {**shared, WORST: ball.worst, MEAN: ball.mean, PGD: pgd}
    model.set_relu_key(None)
    return ModelEvaluation(out, forwards)
