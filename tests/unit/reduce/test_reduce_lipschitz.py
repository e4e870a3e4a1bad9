"""Lipschitz estimates on networks whose constants are known."""

from __future__ import annotations

import itertools

import pytest
import torch

from reduce.lipschitz import (
    SearchSettings,
    Weights,
    gradient_lower_bound,
    lipschitz_estimates,
    pattern_norms,
    pattern_search,
    spectral_product,
)
from trainers.model import MLP


def mlp(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
        w3: torch.Tensor) -> MLP:
    model = MLP(w1.shape[1], w1.shape[0], w3.shape[0])
    with torch.no_grad():
        model.layer1.weight.copy_(w1)
        model.layer1.bias.copy_(b1)
        model.layer2.weight.copy_(w2)
        model.layer2.bias.copy_(b2)
        model.layer3.weight.copy_(w3)
        model.layer3.bias.zero_()
    return model


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_aligned_nonnegative_network_all_estimates_equal_the_constant() -> None:
    """Rank-one aligned non-negative layers with large positive biases: every unit is active near
    the data, the network is affine there with slope W3 W2 W1, and no pattern beats all-ones."""
    g = gen(3)
    v0, u1, u2, u3 = (torch.rand(n, generator=g) + 0.1 for n in (4, 6, 6, 3))
    w1, w2, w3 = torch.outer(u1, v0), torch.outer(u2, u1), torch.outer(u3, u2)
    model = mlp(w1, torch.full((6,), 50.0), w2, torch.full((6,), 50.0), w3)
    known = float(u3.double().norm() * u2.double().norm() ** 2 * u1.double().norm() ** 2
                  * v0.double().norm())
    x = torch.randn(64, 4, generator=g)
    est = lipschitz_estimates(model, x, SearchSettings(population=20, generations=20), gen())
    assert est.lower == pytest.approx(known, rel=1e-5)
    assert est.search == pytest.approx(known, rel=1e-5)
    assert est.upper == pytest.approx(known, rel=1e-5)


def _separable(h: int, seed: int) -> tuple[Weights, float]:
    """One input, one output, diagonal W2: ||M|| = |sum_i t_i d1_i d2_i|, t_i = w_i s_i v_i,
    maximised by switching on exactly the units of the dominant sign."""
    g = gen(seed)
    v, s, w = (torch.randn(h, generator=g, dtype=torch.float64) for _ in range(3))
    weights = Weights(w1=v.unsqueeze(1), b1=torch.zeros(h, dtype=torch.float64),
                      w2=torch.diag(s), b2=torch.zeros(h, dtype=torch.float64),
                      w3=w.unsqueeze(0))
    t = w * s * v
    return weights, float(max(t.clamp_min(0).sum(), (-t).clamp_min(0).sum()))


def test_genetic_search_finds_the_best_pattern_without_polish() -> None:
    w, best = _separable(20, seed=1)
    found, d1, d2 = pattern_search(w, SearchSettings(population=60, generations=400,
                                                     polish=False), gen())
    assert found == pytest.approx(best, rel=1e-9)
    assert float(pattern_norms(w, d1[None], d2[None])[0]) == pytest.approx(found)


def test_polish_alone_reaches_the_optimum_of_a_separable_network() -> None:
    w, best = _separable(200, seed=2)
    found, _, _ = pattern_search(w, SearchSettings(population=2, generations=0), gen())
    assert found == pytest.approx(best, rel=1e-9)


def test_search_matches_brute_force_on_a_small_network() -> None:
    torch.manual_seed(0)
    model = MLP(3, 5, 2)
    w = Weights.of(model)
    patterns = torch.tensor(list(itertools.product([False, True], repeat=10)))
    exact = float(pattern_norms(w, patterns[:, :5], patterns[:, 5:]).max())
    found, _, _ = pattern_search(w, SearchSettings(population=30, generations=100), gen())
    assert found == pytest.approx(exact, rel=1e-9)


def test_lower_bound_is_the_autograd_jacobian_norm() -> None:
    torch.manual_seed(1)
    model = MLP(8, 16, 12).double()
    x = torch.randn(40, 8, dtype=torch.float64)
    lower, _, _ = gradient_lower_bound(Weights.of(model), x, batch_size=7)
    norms = [torch.linalg.matrix_norm(torch.autograd.functional.jacobian(model, xi), ord=2)
             for xi in x]
    assert lower == pytest.approx(float(max(norms)), rel=1e-10)


def test_estimates_are_ordered_and_seeded() -> None:
    torch.manual_seed(2)
    model = MLP(8, 32, 12)
    x = torch.randn(200, 8)
    settings = SearchSettings(population=20, generations=30)
    a = lipschitz_estimates(model, x, settings, gen(5))
    b = lipschitz_estimates(model, x, settings, gen(5))
    assert a == b
    assert 0 < a.lower <= a.search <= a.upper
    assert a.upper == pytest.approx(spectral_product(Weights.of(model)))
