"""The bf16 preselection equals the fp32 smoothed max within its bound, and a step waits on the
device once."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import trainers.smoothmax as sm
from trainers.hostsync import record_waits
from trainers.model import build_model
from trainers.packed import PackedMLP
from trainers.smoothmax import (
    SampleSource,
    SmoothMaxStats,
    smoothed_max_ce_backward,
    tensor_source,
    uniform_ball_source,
)

D = 8


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _spread_model(seed: int = 0) -> nn.Module:
    """Layer 2 the identity: the CE varies over the ball far more than the bf16 bound, so the
    preselection leaves samples out (with random layers the bound covers the whole spread)."""
    model = build_model(seed=seed)
    with torch.no_grad():
        model.layer2.weight.copy_(torch.eye(model.layer2.weight.shape[0]))
        model.layer2.bias.fill_(0.01)  # no exact zeros: the generalized ReLU stays put
    return model


def _run(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
         preselect: bool, threshold: float = 1e-13) -> tuple[Tensor, list[Tensor], SmoothMaxStats]:
    model.zero_grad(set_to_none=True)
    stats = SmoothMaxStats()
    loss = smoothed_max_ce_backward(model, source, y, temperature, threshold=threshold,
                                    preselect=preselect, stats=stats)
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    return loss, grads, stats


def _compare(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
             n: int) -> SmoothMaxStats:
    """Preselected against exact fp32: the value within T N threshold plus float32 rounding, the
    gradient within float32 rounding of the same kept samples."""
    want, want_grads, _ = _run(model, source, y, temperature, False)
    got, got_grads, stats = _run(model, source, y, temperature, True)
    assert stats.preselected
    bound = temperature * n * 1e-13 + 4e-7 * float(want.abs().max())
    assert float((got - want).abs().max()) <= bound
    for g, w in zip(got_grads, want_grads, strict=True):
        assert float((g - w).abs().max()) <= 1e-5 * float(w.abs().max())
    return stats


def test_bound_holds_on_every_sample() -> None:
    """The bound is proved, not fitted: check that it holds (and is not vacuous) on samples
    from trained-like and spread-out models, packed and single."""
    torch.manual_seed(0)
    for model in (build_model(seed=1), _spread_model(2)):
        x, y = torch.randn(6, D) * 3, torch.randint(0, 12, (6,))
        source = uniform_ball_source(x, 2.0, 3000, 20000, seed=3)
        z, yr = sm._rows(source.chunk(0).unsqueeze(0), y.unsqueeze(0))
        layers = sm._stacked_layers(model, False)
        assert layers is not None
        ce, err, exact = (torch.empty(yr.shape) for _ in range(3))
        with torch.no_grad():
            sm._PreselectForward(layers, z)(z, yr, ce, err)
            sm._Forward(model, False, z)(z, yr, exact)
        assert bool(((ce - exact).abs() <= err).all())
        assert float((ce - exact).abs().max()) > 0  # bf16 did round


@pytest.mark.parametrize("kind", ["spread", "random"])
def test_low_temperature_equals_exact(kind: str) -> None:
    torch.manual_seed(4)
    model = _spread_model() if kind == "spread" else build_model(seed=5)
    x, y = torch.randn(12, D), torch.randint(0, 12, (12,))
    source = uniform_ball_source(x, 3.0, 2000, 7000, seed=6)
    stats = _compare(model, source, y, 1e-4, 2000)
    if kind == "spread":  # the gather path: candidates are a strict subset
        assert 0 < stats.candidate_samples < stats.samples // 2
        assert stats.gathered_chunks > 0


def test_near_ties_are_all_kept() -> None:
    """Half the samples of each point are copies moved by ~1e-6 (CE within ~1e-6 of each other,
    far below the bf16 error): the fp32 path keeps them all at T=1e-4, so must the preselection."""
    torch.manual_seed(7)
    model = _spread_model(8)
    x, y = torch.randn(5, D), torch.randint(0, 12, (5,))
    far = x.unsqueeze(1) + 3.0 * (2 * torch.rand(5, 600, D) - 1)
    ce = torch.empty(5 * 600)
    with torch.no_grad():
        sm._Forward(model, False, far.view(1, -1, D))(far.view(1, -1, D),
                                                      y.repeat_interleave(600).unsqueeze(0),
                                                      ce.view(1, -1))
    top = far[torch.arange(5), ce.view(5, 600).argmax(1)]          # each point's worst sample
    ties = top.unsqueeze(1) + 1e-6 * torch.randn(5, 600, D)
    samples = torch.cat([far, ties], 1)[:, torch.randperm(1200)]
    source = tensor_source(samples, 1000)
    _, _, exact_stats = _run(model, source, y, 1e-4, False)
    assert exact_stats.backward_samples >= 5 * 500  # the ties carry weight
    _compare(model, source, y, 1e-4, 1200)


def test_high_temperature_runs_exact_and_forced_path_agrees(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At T=1 nothing is pruned and the preselection is not tried; forced, it still agrees."""
    torch.manual_seed(9)
    model = build_model(seed=10)
    x, y = torch.randn(6, D), torch.randint(0, 12, (6,))
    source = uniform_ball_source(x, 0.3, 500, 1000, seed=11)
    _, _, stats = _run(model, source, y, 1.0, True)
    assert not stats.preselected
    monkeypatch.setattr(sm, "PRESELECT_MAX_MARGIN", float("inf"))
    _compare(model, source, y, 1.0, 500)


def test_pack_preselected_equals_exact() -> None:
    torch.manual_seed(12)
    models = [_spread_model(s) for s in range(3)]
    pack = PackedMLP(models)
    x, y = torch.randn(3, 4, D), torch.randint(0, 12, (3, 4))
    source = uniform_ball_source(x, 3.0, 900, 1000, [1, 2, 3])
    stats = _compare(pack, source, y, 1e-4, 900)
    assert stats.candidate_samples < stats.samples


def test_float64_and_other_modules_run_exact() -> None:
    model = build_model(seed=0).double()
    x, y = torch.randn(3, D, dtype=torch.float64), torch.randint(0, 12, (3,))
    _, _, stats = _run(model, uniform_ball_source(x, 0.3, 100, 100, 1), y, 1e-4, True)
    assert not stats.preselected


# --- host synchronisation ---------------------------------------------------------------------

@pytest.mark.parametrize(("temperature", "preselect"), [(1.0, False), (1e-4, False),
                                                          (1e-4, True)])
def test_one_wait_per_step(temperature: float, preselect: bool) -> None:
    """One read of the selection counts per call, whatever the number of chunks; the only other
    calls are the generalized ReLU's CPU-only zero check (on CUDA it does not look)."""
    torch.manual_seed(13)
    model = _spread_model(14)
    x, y = torch.randn(4, D), torch.randint(0, 12, (4,))
    source = uniform_ball_source(x, 3.0, 2000, 500, seed=15)
    assert source.n_chunks >= 10
    chunks = [source.chunk(c) for c in range(source.n_chunks)]
    stats = SmoothMaxStats()
    with record_waits() as waits:
        smoothed_max_ce_backward(model, source, y, temperature, preselect=preselect, stats=stats)
    assert stats.preselected == preselect
    assert waits.on_cuda() == [("tolist", "trainers/smoothmax.py")]
    assert all(torch.equal(source.chunk(c), chunks[c]) for c in range(source.n_chunks))
