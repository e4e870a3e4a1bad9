"""Accuracy metrics of one model: clean, worst case and mean over ball samples, PGD.

All counts are exact integers over the points given (no batch over-counting); ball samples are
evaluated in chunks of at most `chunk_size` points, so memory does not grow with N(eps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers import rng
from trainers.attacks import pgd_linf, uniform_ball
from trainers.model import MLP


def _logits(model: nn.Module, x: Tensor) -> Tensor:
    """The MLP's forward with in-place ReLUs when no gradient is needed (the ball samples'
    hot loop); any other module, or a forward under autograd, runs as is."""
    if not isinstance(model, MLP) or (torch.is_grad_enabled() and x.requires_grad):
        return model(x)
    h = F.linear(x, model.layer1.weight, model.layer1.bias).relu_()
    h = F.linear(h, model.layer2.weight, model.layer2.bias).relu_()
    return F.linear(h, model.layer3.weight, model.layer3.bias)


def _correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return _logits(model, x).argmax(dim=-1) == y


@torch.no_grad()
def clean_accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024) -> float:
    hits = sum(int(_correct(model, x[i:i + batch_size], y[i:i + batch_size]).sum())
               for i in range(0, len(y), batch_size))
    return hits / len(y)


@dataclass(frozen=True)
class BallAccuracy:
    worst: float   # fraction of points whose n_worst ball samples are all classified correctly
    mean: float    # fraction correct over the first n_mean ball samples of every point
    forwards: int  # ball points evaluated (cost: early stopping makes this < n * max(N, M))


@torch.no_grad()
def ball_accuracy(model: nn.Module, x: Tensor, y: Tensor, radius: float, n_worst: int,
                  n_mean: int, *, chunk_size: int, key: int,
                  first_round: int = 64, on_round: Callable[[int], None] | None = None) -> BallAccuracy:
    """Worst-case and mean accuracy over uniform samples in the L-inf ball of each point.

    Every point has one stream of i.i.d. uniform draws; sample k of a point is the k-th draw of
    its stream: a pure function of (key, point, k) (trainers.rng), the same on every device and
    whatever the rounds. Worst case: a point counts iff its first `n_worst` draws are all classified
    correctly, and its stream stops at the first miss once the mean no longer needs it. Mean:
    correct draws among the first `n_mean` of every point, over n * n_mean — exact, since no point
    stops before its n_mean-th draw. All active points advance together, one round at a time; a
    round has at most `chunk_size` ball points and at most max(first_round, draws so far) draws
    per point, so a point stops within twice the draws it took to miss.
    """
    n, d = x.shape
    total = max(n_worst, n_mean)
    survived = torch.ones(n, dtype=torch.bool, device=x.device)
    mean_hits = torch.zeros((), dtype=torch.int64, device=x.device)
    active = torch.arange(n, device=x.device)
    k, forwards = 0, 0
    keys = rng.keys_tensor(key, x.device)
    while k < total and len(active):
        s = min(max(1, chunk_size // len(active)), max(first_round, k), total - k)
        z = uniform_ball(x[active], radius, keys, k, s, total, points=active)
        ok = _correct(model, z.reshape(-1, d), y[active].repeat_interleave(s)).reshape(-1, s)
        forwards += ok.numel()
        if k < n_mean:
            mean_hits += ok[:, :n_mean - k].sum()
        if k < n_worst:
            missed = ~ok[:, :n_worst - k].all(dim=1)
            survived[active[missed]] = False
        k += s
        keep = (survived[active] & (k < n_worst)) | (k < n_mean)
        active = active[keep]
        if on_round is not None:
            on_round(k)
    return BallAccuracy(worst=int(survived.sum()) / n, mean=int(mean_hits) / (n * n_mean),
                        forwards=forwards)


def pgd_accuracy(model: nn.Module, x: Tensor, y: Tensor, radius: float, *, steps: int,
                 step_size: float, random_start: bool, key: int,
                 batch_size: int = 1024) -> float:
    """Accuracy on the final iterate of an L-inf PGD attack (start uniform in the ball, point i's
    start a pure function of (key, i))."""
    hits = 0
    keys = rng.keys_tensor(key, x.device)
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        noise = rng.uniform(keys, [(i, len(yb))], [len(y)], x.shape[-1], x.dtype)[0] \
            if random_start else None
        z = pgd_linf(model, xb, yb, radius, steps, step_size,
                     random_start=radius if random_start else None, start_noise=noise)
        with torch.no_grad():
            hits += int(_correct(model, z, yb).sum())
    return hits / len(y)
