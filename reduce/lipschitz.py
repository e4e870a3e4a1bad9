"""Lipschitz estimates (L2 -> L2) of the MLP x -> W3 relu(W2 relu(W1 x + b1) + b2) + b3.

Wherever it is differentiable the Jacobian is W3 D2 W2 D1 W1 with D1, D2 diagonal 0/1 activation
patterns, so

    lower = max over test points of ||J(x)||_2        (the largest input-gradient norm seen)
    search = ||W3 D2 W2 D1 W1||_2 at the best pattern a seeded search finds
    upper = ||W3||_2 ||W2||_2 ||W1||_2                 (a true upper bound)

The search starts from the test set's best pattern, so lower <= search <= upper always holds.
Its target, the maximum over all 0/1 patterns, bounds the true constant from above (the norm is
convex in each D, so the maximum over subgradients in [0, 1] sits at a 0/1 vertex); a search can
only approach it from below. Computed in float64 on the CPU (the weights and the test points come
over in one transfer): on CUDA each small SVD would wait on the device, and the CPU search draws
the same patterns whatever device trained or evaluates the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from trainers.model import MLP


@dataclass(frozen=True)
class Weights:
    w1: Tensor
    b1: Tensor
    w2: Tensor
    b2: Tensor
    w3: Tensor

    @classmethod
    def of(cls, model: MLP) -> Weights:
        def get(t: Tensor) -> Tensor:
            return t.detach().to(torch.float64)
        return cls(get(model.layer1.weight), get(model.layer1.bias), get(model.layer2.weight),
                   get(model.layer2.bias), get(model.layer3.weight))


def spectral_product(w: Weights) -> float:
    return float(torch.prod(torch.stack([torch.linalg.matrix_norm(m, ord=2)
                                         for m in (w.w1, w.w2, w.w3)])))


def pattern_norms(w: Weights, d1: Tensor, d2: Tensor) -> Tensor:
    """||W3 D2 W2 D1 W1||_2 for a batch of patterns d1 (P, h1), d2 (P, h2)."""
    a = d1.to(w.w1.dtype).unsqueeze(-1) * w.w1               # (P, h1, n_in)
    b = d2.to(w.w1.dtype).unsqueeze(-1) * (w.w2 @ a)         # (P, h2, n_in)
    return torch.linalg.matrix_norm(w.w3 @ b, ord=2)


@torch.no_grad()
def gradient_lower_bound(w: Weights, x: Tensor,
                         batch_size: int = 1024) -> tuple[float, Tensor, Tensor]:
    """Largest Jacobian norm over the rows of x, and the activation patterns where it occurs."""
    best, best_d1, best_d2 = -1.0, torch.ones(0), torch.ones(0)
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(w.w1)
        h1 = xb @ w.w1.T + w.b1
        h2 = h1.clamp_min(0) @ w.w2.T + w.b2
        d1, d2 = h1 > 0, h2 > 0
        norms = pattern_norms(w, d1, d2)
        j = int(norms.argmax())
        if float(norms[j]) > best:
            best, best_d1, best_d2 = float(norms[j]), d1[j].clone(), d2[j].clone()
    return best, best_d1, best_d2


@dataclass(frozen=True)
class SearchSettings:
    population: int = 100
    generations: int = 3200
    elite: int = 4
    tournament: int = 3
    mutation: float | None = None  # None: 1 / (h1 + h2), one flipped unit per child on average
    polish: bool = True


def _polish(w: Weights, d1: Tensor, d2: Tensor, max_rounds: int = 200) -> tuple[Tensor, Tensor]:
    """Alternating ascent: with (u, v) the top singular pair of M = W3 D2 W2 D1 W1, u^T M v is
    linear in each pattern given the other, so setting d_i = [coefficient_i > 0] gives a pattern
    whose norm is >= u^T M_new v >= u^T M_old v = ||M_old||: the norm never decreases."""
    d1, d2 = d1.to(w.w1.dtype), d2.to(w.w1.dtype)
    for _ in range(max_rounds):
        changed = False
        for layer in (1, 2):
            m = w.w3 @ (d2.unsqueeze(-1) * (w.w2 @ (d1.unsqueeze(-1) * w.w1)))
            u_all, _, vh = torch.linalg.svd(m)
            u, v = u_all[:, 0], vh[0]
            if layer == 1:
                coef = (w.w1 @ v) * (w.w2.T @ (d2 * (w.w3.T @ u)))
                new = (coef > 0).to(d1.dtype)
                changed |= bool((new != d1).any())
                d1 = new
            else:
                coef = (w.w2 @ (d1 * (w.w1 @ v))) * (w.w3.T @ u)
                new = (coef > 0).to(d2.dtype)
                changed |= bool((new != d2).any())
                d2 = new
        if not changed:
            break
    return d1 > 0, d2 > 0


@torch.no_grad()
def pattern_search(w: Weights, settings: SearchSettings, generator: torch.Generator,
                   starts: list[tuple[Tensor, Tensor]] | None = None,
                   ) -> tuple[float, Tensor, Tensor]:
    """Seeded genetic search for the activation pattern with the largest Jacobian norm.

    Population of 0/1 vectors over both hidden layers (random, plus `starts` and all-ones);
    each generation keeps the `elite` best and breeds the rest by tournament selection, uniform
    crossover and bit-flip mutation. The best pattern is then polished by alternating ascent.
    """
    h1, h2 = w.w1.shape[0], w.w2.shape[0]
    n_bits, p = h1 + h2, settings.population
    dev = w.w1.device
    rate = settings.mutation if settings.mutation is not None else 1.0 / n_bits

    def rand(*shape: int) -> Tensor:
        return torch.rand(shape, generator=generator, device=dev)

    def fitness(pop: Tensor) -> Tensor:
        return pattern_norms(w, pop[:, :h1], pop[:, h1:])

    pop = rand(p, n_bits) < 0.5
    seeds = [*(starts or []), (torch.ones(h1, dtype=torch.bool), torch.ones(h2, dtype=torch.bool))]
    for i, (s1, s2) in enumerate(seeds[:p]):
        pop[i] = torch.cat([s1.to(dev).bool(), s2.to(dev).bool()])
    fit = fitness(pop)
    n_child = p - settings.elite
    for _ in range(settings.generations):
        if n_child == 0:
            break
        order = fit.argsort(descending=True)
        contenders = torch.randint(0, p, (2, n_child, settings.tournament), generator=generator,
                                   device=dev)
        winners = contenders.gather(2, fit[contenders].argmax(dim=2, keepdim=True)).squeeze(2)
        mask = rand(n_child, n_bits) < 0.5
        children = torch.where(mask, pop[winners[0]], pop[winners[1]])
        children ^= rand(n_child, n_bits) < rate
        pop = torch.cat([pop[order[:settings.elite]], children])
        fit = torch.cat([fit[order[:settings.elite]], fitness(children)])
    j = int(fit.argmax())
    d1, d2 = pop[j, :h1], pop[j, h1:]
    if settings.polish:
        d1, d2 = _polish(w, d1, d2)
    best = float(pattern_norms(w, d1.unsqueeze(0), d2.unsqueeze(0))[0])
    return max(best, float(fit[j])), d1, d2


@dataclass(frozen=True)
class LipschitzEstimates:
    lower: float   # largest input-gradient (Jacobian) norm on the test set
    search: float  # best activation pattern found by the search
    upper: float   # product of the layers' spectral norms


def _to_cpu64(model: MLP, x: Tensor) -> tuple[Weights, Tensor]:
    """The weights and x as float64 CPU tensors, in one device-to-host transfer."""
    parts = [model.layer1.weight, model.layer1.bias, model.layer2.weight, model.layer2.bias,
             model.layer3.weight, x]
    flat = torch.cat([p.detach().reshape(-1).to(torch.float64) for p in parts]).cpu()
    w1, b1, w2, b2, w3, xs = (chunk.view(p.shape) for chunk, p in
                              zip(flat.split([p.numel() for p in parts]), parts, strict=True))
    return Weights(w1, b1, w2, b2, w3), xs


def lipschitz_estimates(model: MLP, x: Tensor, settings: SearchSettings,
                        generator: torch.Generator, batch_size: int = 1024) -> LipschitzEstimates:
    """generator: a CPU generator (the search runs on the CPU)."""
    w, x = _to_cpu64(model, x)
    lower, d1, d2 = gradient_lower_bound(w, x, batch_size)
    search, _, _ = pattern_search(w, settings, generator, starts=[(d1, d2)] if lower >= 0 else None)
    return LipschitzEstimates(lower=lower, search=max(search, lower), upper=spectral_product(w))
