"""Accuracy metrics on a linear model whose margins, hence answers, are known exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reduce.accuracy import ball_accuracy, clean_accuracy, pgd_accuracy


def linear_model() -> nn.Module:
    """Class 0 iff x0 > 0 (logit difference 2 * x0); x1 plays no role."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        model.bias.zero_()
    return model.eval()


RADIUS = 0.2
# (x0, label): margin x0 for class 0, -x0 for class 1
POINTS = [(0.5, 0), (0.1, 0), (-0.5, 1), (-0.05, 0), (0.25, 0)]
# probability that one uniform ball sample is classified correctly
P_CORRECT = [1.0, 0.75, 1.0, 0.15 / 0.4, 1.0]


def data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor([[x0, 0.3] for x0, _ in POINTS])
    y = torch.tensor([label for _, label in POINTS])
    return x, y


def test_clean_accuracy_has_exact_denominators() -> None:
    x = torch.linspace(-1, 1, 1001).unsqueeze(1).repeat(1, 2)
    y = torch.zeros(1001, dtype=torch.long)
    # 500 points have x0 > 0; batches of 100 leave a last batch of 1
    assert clean_accuracy(linear_model(), x, y, batch_size=100) == 500 / 1001
    x, y = data()
    assert clean_accuracy(linear_model(), x, y, batch_size=2) == 4 / 5


def test_worst_case_accuracy_counts_points_whose_ball_is_safe() -> None:
    x, y = data()
    result = ball_accuracy(linear_model(), x, y, RADIUS, n_worst=300, n_mean=20, chunk_size=64,
                           key=0)
    assert result.worst == 3 / 5  # margins 0.5, 0.5 and 0.25 exceed the radius


def test_mean_accuracy_is_the_fraction_over_the_first_m_draws() -> None:
    x, y = data()
    result = ball_accuracy(linear_model(), x, y, RADIUS, n_worst=50, n_mean=8000,
                           chunk_size=4096, key=1)
    expected = sum(P_CORRECT) / len(P_CORRECT)
    assert result.mean == pytest.approx(expected, abs=0.01)
    assert result.worst == 3 / 5
    # denominators exact: n_mean draws for every point, whatever the early stops
    assert round(result.mean * 5 * 8000) == pytest.approx(result.mean * 5 * 8000, abs=1e-6)


def test_early_stop_bounds_the_work_of_a_missing_point() -> None:
    x = torch.tensor([[-1.0, 0.0]] * 10)
    y = torch.zeros(10, dtype=torch.long)  # always wrong: every point misses at its first draw
    result = ball_accuracy(linear_model(), x, y, 0.1, n_worst=100_000, n_mean=1, chunk_size=10,
                           key=0, first_round=1)
    assert result.worst == 0.0 and result.mean == 0.0
    assert result.forwards == 10  # one draw each, then stopped


def test_ball_accuracy_is_seeded() -> None:
    x, y = data()
    a = ball_accuracy(linear_model(), x, y, RADIUS, 100, 500, chunk_size=128, key=7)
    b = ball_accuracy(linear_model(), x, y, RADIUS, 100, 500, chunk_size=128, key=7)
    assert a == b
    # sample k of a point is the same whatever the rounds: only the work differs
    for chunk in (1, 37, 5000):
        c = ball_accuracy(linear_model(), x, y, RADIUS, 100, 500, chunk_size=chunk, key=7)
        assert (c.worst, c.mean) == (a.worst, a.mean), chunk


def test_all_correct_model_scores_one_whatever_the_chunking() -> None:
    x = torch.tensor([[5.0, 0.0]] * 7)
    y = torch.zeros(7, dtype=torch.long)
    for chunk in (1, 3, 1000):
        r = ball_accuracy(linear_model(), x, y, 0.3, n_worst=33, n_mean=50, chunk_size=chunk,
                          key=0)
        assert (r.worst, r.mean) == (1.0, 1.0)
        assert r.forwards == 7 * 50


@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_accuracy_reaches_the_margin(random_start: bool) -> None:
    x, y = data()
    acc = pgd_accuracy(linear_model(), x, y, RADIUS, steps=30, step_size=0.02,
                       random_start=random_start, key=0, batch_size=2)
    assert acc == 3 / 5
    # too few steps to cross a 0.1 margin from the centre: the point at margin 0.1 survives
    weak = pgd_accuracy(linear_model(), x, y, RADIUS, steps=2, step_size=0.02,
                        random_start=False, key=0, batch_size=2)
    assert weak == 4 / 5
