"""The chunked smoothed max equals the direct formula, prunes at low T, and stays memory-bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.model import build_model
from trainers.packed import LAYERS, PackedMLP
from trainers.smoothmax import (
    CPU_BACKWARD_ROWS,
    CPU_BLOCK_ROWS,
    SampleSource,
    SmoothMaxStats,
    smoothed_max_ce_backward,
    tensor_source,
    uniform_ball_source,
)

D = 8


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def direct(model: nn.Module, samples: Tensor, y: Tensor, temperature: float) -> Tensor:
    """The formula itself: every sample in one graph, mean_i T * logsumexp_j(CE_ij / T)."""
    b, n, d = samples.shape
    ce = F.cross_entropy(model(samples.reshape(b * n, d)), y.repeat_interleave(n),
                         reduction="none").view(b, n)
    loss = (temperature * torch.logsumexp(ce / temperature, 1)).mean()
    loss.backward()
    return loss.detach()


def all_samples(source: SampleSource) -> Tensor:
    return torch.cat([source.chunk(c) for c in range(source.n_chunks)], -2)


def grads(model: nn.Module) -> list[Tensor]:
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def max_rel_error(got: list[Tensor], want: list[Tensor]) -> float:
    """Largest error of any parameter tensor, relative to that tensor's largest entry."""
    assert len(got) == len(want)
    return max(float((g - w).abs().max() / w.abs().max()) for g, w in zip(got, want, strict=True))


def setup(batch: int, seed: int = 0, dtype: torch.dtype = torch.float64
          ) -> tuple[nn.Module, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    model = build_model(seed=seed).to(dtype)
    x = torch.randn(batch, D, generator=gen, dtype=dtype)
    y = torch.randint(0, 12, (batch,), generator=gen)
    return model, x, y


def compare(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
            threshold: float = 1e-13) -> tuple[float, float, SmoothMaxStats]:
    """(relative value error, max relative gradient error, stats) against the direct formula."""
    model.zero_grad(set_to_none=True)
    want = direct(model, all_samples(source), y, temperature)
    want_grads = grads(model)
    model.zero_grad(set_to_none=True)
    stats = SmoothMaxStats()
    got = smoothed_max_ce_backward(model, source, y, temperature, threshold=threshold,
                                   stats=stats)
    value_err = float((got - want).abs() / want.abs())
    return value_err, max_rel_error(grads(model), want_grads), stats


# (B, N, chunk_size): chunks that do not divide N, B that does not divide the chunk, one sample
# per chunk, and more than one CPU block per chunk.
SHAPES = [(7, 333, 100), (5, 1000, 777), (3, 50, 1), (4, 3000, 9000)]
TEMPERATURES = [1.0, 0.1, 1e-4]


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize(("batch", "n", "chunk_size"), SHAPES)
def test_ball_source_exact(batch: int, n: int, chunk_size: int, temperature: float) -> None:
    model, x, y = setup(batch)
    source = uniform_ball_source(x, 0.3, n, chunk_size, seed=11)
    value_err, grad_err, stats = compare(model, source, y, temperature)
    assert stats.samples == batch * n
    assert value_err <= 1e-12
    assert grad_err <= 1e-9


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize(("batch", "n", "chunk_size"), SHAPES)
def test_tensor_source_exact(batch: int, n: int, chunk_size: int, temperature: float) -> None:
    model, x, y = setup(batch, seed=1)
    gen = torch.Generator().manual_seed(2)
    samples = x.unsqueeze(1) + 0.5 * torch.randn(batch, n, D, generator=gen, dtype=x.dtype)
    source = tensor_source(samples, chunk_size)
    assert torch.equal(all_samples(source), samples)
    value_err, grad_err, _ = compare(model, source, y, temperature)
    assert value_err <= 1e-12
    assert grad_err <= 1e-9


class _Wide(nn.Module):
    """Not the plain MLP: takes the generic (module-call) path of the no-grad pass."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, 12))
        self.max_rows = 0

    def forward(self, z: Tensor) -> Tensor:
        self.max_rows = max(self.max_rows, z.shape[0])
        out: Tensor = self.net(z)
        return out


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_any_module_exact_and_bounded(temperature: float) -> None:
    torch.manual_seed(3)
    model = _Wide().double()
    x = torch.randn(6, D, dtype=torch.float64)
    y = torch.randint(0, 12, (6,))
    source = uniform_ball_source(x, 0.5, 2500, 1000, seed=4)
    value_err, grad_err, _ = compare(model, source, y, temperature)
    assert value_err <= 1e-12 and grad_err <= 1e-9
    model.max_rows = 0
    smoothed_max_ce_backward(model, uniform_ball_source(x, 0.5, 50_000, 1000, seed=4), y,
                             temperature)
    assert model.max_rows <= max(CPU_BLOCK_ROWS, CPU_BACKWARD_ROWS)


def test_gradient_accumulates_into_grad() -> None:
    model, x, y = setup(4)
    source = uniform_ball_source(x, 0.2, 300, 256, seed=5)
    smoothed_max_ce_backward(model, source, y, 0.5)
    once = grads(model)
    smoothed_max_ce_backward(model, source, y, 0.5)
    assert max_rel_error(grads(model), [2 * g for g in once]) <= 1e-12


def test_float32_close_to_direct() -> None:
    """float32 rounding alone moves the direct formula's layer1 gradient by ~1e-4 relative here
    (a sum of 4000 terms that largely cancel), so only closeness is asked of float32."""
    model, x, y = setup(8, dtype=torch.float32)
    source = uniform_ball_source(x, 0.2, 500, 1024, seed=6)
    value_err, grad_err, _ = compare(model, source, y, 1.0)
    assert value_err <= 1e-5 and grad_err <= 2e-3


def test_ball_chunks_are_deterministic_and_in_the_ball() -> None:
    x = torch.randn(10, D)
    source = uniform_ball_source(x, 0.25, 1234, 1000, seed=7)
    widths = [source.chunk(c).shape[1] for c in range(source.n_chunks)]
    assert sum(widths) == 1234 and max(widths) - min(widths) <= 1
    assert max(widths) * 10 <= 1100  # about chunk_size samples per chunk
    first = [source.chunk(c) for c in range(source.n_chunks)]
    for c in reversed(range(source.n_chunks)):  # regenerated in any order, identical
        assert torch.equal(source.chunk(c), first[c])
    again = uniform_ball_source(x, 0.25, 1234, 1000, seed=7)
    assert torch.equal(all_samples(again), torch.cat(first, 1))
    other = uniform_ball_source(x, 0.25, 1234, 1000, seed=8)
    assert not torch.equal(other.chunk(0), first[0])
    assert not torch.equal(first[0], first[1])
    offsets = torch.cat(first, 1) - x.unsqueeze(1)
    assert float(offsets.abs().max()) <= 0.25 + 1e-6
    assert float(offsets.abs().max()) > 0.24  # fills the ball


def test_pruning_at_low_temperature_stays_exact() -> None:
    model, x, y = setup(20)
    source = uniform_ball_source(x, 0.3, 2000, 4000, seed=9)
    value_err, grad_err, stats = compare(model, source, y, 1e-4)
    assert value_err <= 1e-12 and grad_err <= 1e-9
    assert stats.backward_samples < stats.samples // 20
    assert stats.gathered_chunks + stats.skipped_chunks > 0 and stats.full_chunks == 0


def test_no_pruning_at_high_temperature_or_zero_threshold() -> None:
    model, x, y = setup(5)
    source = uniform_ball_source(x, 0.3, 400, 500, seed=10)
    _, _, stats = compare(model, source, y, 1.0)
    assert stats.backward_samples == stats.samples
    assert stats.full_chunks == source.n_chunks
    _, grad_err, stats = compare(model, source, y, 1e-4, threshold=0.0)
    assert stats.backward_samples == stats.samples and grad_err <= 1e-9


def test_rejects_bad_input() -> None:
    model, x, y = setup(2)
    with pytest.raises(ValueError, match="temperature"):
        smoothed_max_ce_backward(model, uniform_ball_source(x, 0.1, 10, 10, 0), y, 0.0)
    with pytest.raises(ValueError, match="n >= 1"):
        uniform_ball_source(x, 0.1, 0, 10, 0)
    with pytest.raises(ValueError, match="shape"):
        tensor_source(torch.zeros(2, D), 10)


def _pack(k: int, batch: int) -> tuple[list[nn.Module], PackedMLP, Tensor, Tensor, list[int]]:
    models = [build_model(seed=s).double() for s in range(k)]
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(k, batch, D, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 12, (k, batch), generator=gen)
    return models, PackedMLP(models).double(), x, y, [100 + s for s in range(k)]


@pytest.mark.parametrize("temperature", [1.0, 1e-4])
@pytest.mark.parametrize("kind", ["ball", "tensor"])
def test_pack_equals_separate_trials(kind: str, temperature: float) -> None:
    """Each trial of a pack gets the value and gradient of the formula on its own samples; at
    low T the trials keep different counts of samples (padded with weight-0 rows)."""
    models, pack, x, y, seeds = _pack(3, 5)
    if kind == "ball":
        source = uniform_ball_source(x, 0.3, 700, 900, seeds)
    else:
        samples = x.unsqueeze(2) + 0.4 * torch.randn(3, 5, 700, D, dtype=torch.float64)
        source = tensor_source(samples, 900)
    stats = SmoothMaxStats()
    losses = smoothed_max_ce_backward(pack, source, y, temperature, stats=stats)
    assert losses.shape == (3,) and stats.samples == 3 * 5 * 700
    samples = all_samples(source)
    for i, model in enumerate(models):
        want = direct(model, samples[i], y[i], temperature)
        assert float((losses[i] - want).abs() / want.abs()) <= 1e-12
        got = [getattr(pack, f"{name}_{kind}").grad[i] for name in LAYERS
               for kind in ("weight", "bias")]
        assert max_rel_error(got, grads(model)) <= 1e-9


def test_pack_draws_what_single_runs_draw() -> None:
    _, _, x, _, seeds = _pack(3, 4)
    packed = uniform_ball_source(x, 0.2, 500, 300, seeds)
    for i, seed in enumerate(seeds):
        single = uniform_ball_source(x[i], 0.2, 500, 300, seed)
        assert single.n_chunks == packed.n_chunks
        for c in range(packed.n_chunks):
            assert torch.equal(packed.chunk(c)[i], single.chunk(c))
    with pytest.raises(ValueError, match="seed"):
        uniform_ball_source(x, 0.2, 500, 300, seeds[:2])


# VmHWM, not ru_maxrss: a spawned child's ru_maxrss starts from its parent's peak on Linux.
_RSS_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from trainers.model import build_model
    from trainers.smoothmax import smoothed_max_ce_backward, uniform_ball_source
    torch.manual_seed(0)
    model = build_model(seed=0)
    x, y = torch.randn(20, 8), torch.randint(0, 12, (20,))
    source = uniform_ball_source(x, 0.3, int(sys.argv[1]), 65536, seed=1)
    smoothed_max_ce_backward(model, source, y, 1e-4)
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()
    print(json.dumps(int(status[0]) * 1024))
""")


def _peak_rss(n: int) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(n)], check=True,
                         capture_output=True, text=True, timeout=120, env=env)
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
def test_peak_memory_does_not_grow_with_n() -> None:
    """20 x 30,000 samples: held at once, their activations alone would take ~1 GB; the
    chunked pass adds only the CE values (4 MB) and chunk-sized buffers."""
    small, large = _peak_rss(1000), _peak_rss(30_000)
    assert large - small < 150 * 2**20, (small, large)


def _draw_counter(monkeypatch: pytest.MonkeyPatch, rows: list[int] | None = None) -> list[int]:
    """Counts the draws of whole chunks (`uniform_ball`) and of picked rows (`uniform_ball_at`,
    whose row counts go to `rows`)."""
    import trainers.smoothmax as sm
    calls: list[int] = []
    real, real_at = sm.uniform_ball, sm.uniform_ball_at

    def counted(*args: object, **kwargs: object) -> Tensor:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    def counted_at(*args: object, **kwargs: object) -> Tensor:
        calls.append(1)
        out = real_at(*args, **kwargs)  # type: ignore[arg-type]
        if rows is not None:
            rows.append(out.shape[0] * out.shape[1])
        return out

    monkeypatch.setattr(sm, "uniform_ball", counted)
    monkeypatch.setattr(sm, "uniform_ball_at", counted_at)
    return calls


def test_pass_two_draws_only_the_picked_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """At low T with no sample cache, pass 2 draws the kept samples by (point, index), never a
    whole chunk again: the rows drawn are the gathered rows (a handful of the 20,000), and the
    loss and gradient equal those of the cached run bit for bit."""
    import trainers.smoothmax as sm
    model, x, y = setup(5)
    results = {}
    for budget in (sm.SAMPLE_CACHE_BYTES, 0):
        monkeypatch.setattr(sm, "SAMPLE_CACHE_BYTES", budget)
        rows: list[int] = []
        calls = _draw_counter(monkeypatch, rows)
        model.zero_grad()
        source = uniform_ball_source(x, 0.3, 4000, 777, seed=11)
        stats = SmoothMaxStats()
        loss = smoothed_max_ce_backward(model, source, y, 1e-4, stats=stats)
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results[budget] = (loss, grads)
        monkeypatch.undo()
    assert stats.full_chunks == 0 and stats.gathered_chunks >= 1
    assert len(calls) == source.n_chunks + stats.gathered_chunks
    assert 0 < sum(rows) < 0.01 * 5 * 4000
    (l1, g1), (l0, g0) = results[sm.SAMPLE_CACHE_BYTES], results[0]
    assert torch.equal(l1, l0) and all(torch.equal(a, b) for a, b in zip(g1, g0, strict=True))


@pytest.mark.parametrize("temperature", [1.0, 1e-4])
def test_small_batches_draw_once_same_result(monkeypatch: pytest.MonkeyPatch,
                                             temperature: float) -> None:
    """Under the cache budget pass 2 reuses pass 1's samples: each chunk drawn once, and the loss
    and gradient bit-identical to drawing them again (budget 0)."""
    import trainers.smoothmax as sm
    model, x, y = setup(5)
    results = {}
    for budget in (sm.SAMPLE_CACHE_BYTES, 0):
        monkeypatch.setattr(sm, "SAMPLE_CACHE_BYTES", budget)
        calls = _draw_counter(monkeypatch)
        model.zero_grad()
        source = uniform_ball_source(x, 0.3, 1000, 777, seed=11)
        loss = smoothed_max_ce_backward(model, source, y, temperature)
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results[budget] = (loss, grads, len(calls), source.n_chunks)
        monkeypatch.undo()
    (l1, g1, draws1, chunks), (l0, g0, draws0, _) = results[sm.SAMPLE_CACHE_BYTES], results[0]
    assert draws1 == chunks and draws0 > chunks
    assert torch.equal(l1, l0) and all(torch.equal(a, b) for a, b in zip(g1, g0, strict=True))


def test_cache_off_above_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose samples exceed the budget is drawn again in pass 2: memory stays bounded."""
    import trainers.smoothmax as sm
    model, x, y = setup(5)
    monkeypatch.setattr(sm, "SAMPLE_CACHE_BYTES", x.numel() * 1000 * x.element_size() - 1)
    calls = _draw_counter(monkeypatch)
    source = uniform_ball_source(x, 0.3, 1000, 777, seed=11)
    smoothed_max_ce_backward(model, source, y, 1.0)
    assert len(calls) == 2 * source.n_chunks
