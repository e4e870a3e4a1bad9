"""The fused robust pass (trainers.kernels): its samples are the sampler's bit for bit, its CE is
the fp32 path's within rounding, and on tensor cores its certificate holds on every sample, so
the kept set, loss and gradient are those of the chunked fp32 path.

Where CUDA is present the kernel runs there (`pytest -m cuda` selects these tests too). Without
a GPU it runs under Triton's interpreter (tests/conftest.py), which computes its dots in fp32
whatever the precision asked: the tensor-core rounding itself is checked by emulating it in
torch (`emulated_scores`), the kernel's arithmetic of the bound by comparing it with the same
formula in torch."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import trainers.smoothmax as sm
from trainers import rng
from trainers.attacks import uniform_ball
from trainers.hostsync import record_waits
from trainers.kernels import fused_ce
from trainers.kernels.certificate import (
    Certificate,
    Precision,
    emulated_scores,
    round_operand,
    split_product_error,
)
from trainers.kernels.fused_ce import FusedUnavailable, fused_scores, segments
from trainers.model import build_model
from trainers.packed import PackedMLP
from trainers.smoothmax import (
    Kernel,
    SampleSource,
    SmoothMaxStats,
    smoothed_max_ce_backward,
    uniform_ball_source,
)

D = 8
TC = [Precision.TF32X3, Precision.BF16X3]
# the kernel's device: CUDA where present, else the CPU under the interpreter
DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")

pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.cuda]


def _spread_model(seed: int = 0, hidden: int = 200) -> nn.Module:
    """Layer 2 the identity: the CE varies over the ball far more than the bound, so the
    certificate rules samples out (as on a trained model)."""
    model = build_model(hidden=hidden, seed=seed)
    with torch.no_grad():
        model.layer2.weight.copy_(torch.eye(hidden))
        model.layer2.bias.fill_(0.01)  # no exact zeros: the generalized ReLU stays put
    return model


def _keys(seeds: list[int]) -> Tensor:
    return rng.keys_tensor([rng.stream_key(s, rng.Purpose.BALL, 0) for s in seeds], DEV)


def _fp32_ce(model: nn.Module, z: Tensor, y: Tensor) -> Tensor:
    """The chunked path's CE of rows z (k, R, d), labels y (k, R)."""
    out = torch.empty(y.shape, device=z.device)
    with torch.no_grad():
        sm._Forward(model, True, z)(z, y, out)
    return out


@pytest.mark.parametrize(("d", "hidden", "n"), [(8, 200, 150), (3, 40, 70)])
def test_kernel_samples_and_ce(d: int, hidden: int, n: int) -> None:
    """Samples bit-identical to `uniform_ball` (odd d, n not a multiple of the block, a pack of
    two, a hidden width that is no power of two); CE within fp32 rounding of the torch pass."""
    torch.manual_seed(0)
    pack = PackedMLP([build_model(n_in=d, hidden=hidden, seed=s) for s in (1, 2)]).to(DEV)
    x, y = torch.randn(2, 3, d, device=DEV), torch.randint(0, 12, (2, 3), device=DEV)
    keys = _keys([1, 2])
    out = fused_scores(sm._stacked_layers(pack, True), x, y, keys, 0.3, n, store_samples=True)
    want = uniform_ball(x, 0.3, keys, 0, n, n)
    assert out.samples is not None and torch.equal(out.samples, want)
    ref = _fp32_ce(pack, want.reshape(2, 3 * n, d), y.repeat_interleave(n, 1)).view(2, 3, n)
    # fp32 rounding: both sides are within gamma_201 |W||h| of the exact value; observed ~1e-7
    assert torch.allclose(out.ce, ref, rtol=1e-5, atol=1e-5)
    assert out.err is None


def test_segments_cover_the_width() -> None:
    assert segments(200) == (128, 64, 16)
    for hidden in (1, 16, 40, 100, 200, 500, 1000):
        a, b, c = segments(hidden)
        assert a + b + c >= hidden and min(a, b, c) >= 16
        assert all(s & (s - 1) == 0 for s in (a, b, c))
        assert a + b + c - hidden < max(48, hidden // 4)


@pytest.mark.parametrize("precision", TC)
def test_kernel_bound_is_the_certificate(precision: Precision) -> None:
    """The kernel computes the certificate's formula: err equals the torch evaluation up to the
    inflation the kernel applies for its own one-pass tf32 products (<= 0.3%)."""
    torch.manual_seed(1)
    pack = PackedMLP([build_model(seed=3)]).to(DEV)
    x, y = torch.randn(1, 2, D, device=DEV), torch.randint(0, 12, (1, 2), device=DEV)
    keys, n = _keys([3]), 80
    out = fused_scores(sm._stacked_layers(pack, True), x, y, keys, 0.3, n, precision)
    z = uniform_ball(x, 0.3, keys, 0, n, n).reshape(1, 2 * n, D)
    _, err = emulated_scores(sm._stacked_layers(pack, True), z, y.repeat_interleave(n, 1),
                             precision)
    assert out.err is not None
    ratio = out.err.reshape(1, -1) / err
    # on CUDA the activations the bound is taken of are the tensor cores' own (~1e-3 apart)
    slack = 1e-5 if DEV.type == "cpu" else 2e-3
    assert float(ratio.min()) >= 1 - slack and float(ratio.max()) <= 1.003 + slack


@pytest.mark.parametrize("precision", TC)
def test_certificate_holds_on_every_sample(precision: Precision) -> None:  # torch only
    """The bound is proved, not fitted: tensor-core rounding emulated in torch on 36,000
    samples of a random and a spread model, with near-ties (copies of each point's worst sample
    moved by ~1e-6), every |CE~ - CE_fp32| <= err; and the rounding is real (not vacuous)."""
    torch.manual_seed(2)
    for model in (build_model(seed=4), _spread_model(5)):
        layers = sm._stacked_layers(model, False)
        assert layers is not None
        x, y = torch.randn(6, D) * 3, torch.randint(0, 12, (6,))
        far = x.unsqueeze(1) + 2.0 * (2 * torch.rand(6, 3000, D) - 1)
        ce = _fp32_ce(model_as_pack(model), far.view(1, -1, D), y.repeat_interleave(3000)[None])
        top = far[torch.arange(6), ce.view(6, 3000).argmax(1)]
        ties = top.unsqueeze(1) + 1e-6 * torch.randn(6, 3000, D)
        z = torch.cat([far, ties], 1).view(1, -1, D)
        yr = y.repeat_interleave(6000)[None]
        exact = _fp32_ce(model_as_pack(model), z, yr)
        got, err = emulated_scores(layers, z, yr, precision)
        assert bool(((got - exact).abs() <= err).all())
        assert float((got - exact).abs().max()) > 0


def model_as_pack(model: nn.Module) -> nn.Module:
    return PackedMLP([model]) if not isinstance(model, PackedMLP) else model


def test_rounding_emulation() -> None:
    """tf32 keeps 10 mantissa bits (to nearest, ties away), bf16 7 (to nearest even); the split
    hi + lo recovers a to within u^2 |a|, the assumption of `split_product_error`."""
    a = torch.randn(10000) * 100
    for precision, u in ((Precision.TF32X3, 2.0 ** -11), (Precision.BF16X3, 2.0 ** -8)):
        hi = round_operand(a, precision)
        lo = round_operand(a - hi, precision)
        assert bool(((a - hi).abs() <= u * a.abs()).all())
        assert bool(((a - hi - lo).abs() <= u * u * a.abs()).all())
        bits = (hi.view(torch.int32) & ((1 << (13 if u == 2.0 ** -11 else 16)) - 1))
        assert bool((bits == 0).all())
    assert split_product_error(Precision.TF32X3, 200) < split_product_error(Precision.BF16X3, 200)


def _run(model: nn.Module, source: SampleSource, y: Tensor, temperature: float,
         kernel: Kernel, precision: Precision = Precision.IEEE
         ) -> tuple[Tensor, list[Tensor], SmoothMaxStats]:
    model.zero_grad(set_to_none=True)
    stats = SmoothMaxStats()
    loss = smoothed_max_ce_backward(model, source, y, temperature, kernel=kernel,
                                    precision=precision, stats=stats)
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    return loss, grads, stats


def _compare(model: nn.Module, source: SampleSource, y: Tensor, temperature: float, n: int,
             precision: Precision) -> SmoothMaxStats:
    """Fused against chunked: the value within T N threshold plus fp32 rounding; the gradient
    within fp32 rounding of the same kept samples (both sides' CE are within ~1e-6 relative)."""
    want, want_grads, want_stats = _run(model, source, y, temperature, Kernel.CHUNKED)
    got, got_grads, stats = _run(model, source, y, temperature, Kernel.FUSED, precision)
    bound = temperature * n * 1e-13 + 4e-7 * float(want.abs().max())
    assert float((got - want).abs().max()) <= bound
    for g, w in zip(got_grads, want_grads, strict=True):
        assert float((g - w).abs().max()) <= 1e-5 * float(w.abs().max())
    if not stats.certified:
        assert stats.selected_samples == want_stats.selected_samples
    return stats


@pytest.mark.parametrize("precision", [Precision.IEEE, *TC])
def test_fused_step_equals_chunked_at_low_temperature(precision: Precision) -> None:
    torch.manual_seed(4)
    model = _spread_model(6).to(DEV)
    x, y = torch.randn(3, D, device=DEV), torch.randint(0, 12, (3,), device=DEV)
    source = uniform_ball_source(x, 3.0, 300, 400, seed=6)
    stats = _compare(model, source, y, 1e-4, 300, precision)
    assert stats.certified == precision.certified
    if precision.certified:  # the certificate rules most samples out on this model
        assert 0 < stats.candidate_samples < stats.samples // 2


def test_fused_pack_equals_chunked_and_high_temperature_runs_fp32() -> None:
    torch.manual_seed(12)
    pack = PackedMLP([_spread_model(s) for s in range(2)]).to(DEV)
    x, y = torch.randn(2, 2, D, device=DEV), torch.randint(0, 12, (2, 2), device=DEV)
    source = uniform_ball_source(x, 3.0, 150, 200, [1, 2])
    stats = _compare(pack, source, y, 1e-4, 150, Precision.TF32X3)
    assert stats.certified and stats.candidate_samples < stats.samples
    stats = _compare(pack, source, y, 1.0, 150, Precision.TF32X3)
    assert not stats.certified  # T = 1: every sample would be a candidate


def test_fused_step_waits_once() -> None:
    torch.manual_seed(13)
    model = _spread_model(14).to(DEV)
    x, y = torch.randn(2, D, device=DEV), torch.randint(0, 12, (2,), device=DEV)
    source = uniform_ball_source(x, 3.0, 200, 50, seed=15)
    assert source.n_chunks >= 4
    with record_waits() as waits:
        smoothed_max_ce_backward(model, source, y, 1e-4, kernel=Kernel.FUSED,
                                 precision=Precision.TF32X3)
    assert waits.on_cuda() == [("tolist", "trainers/smoothmax.py")]


def test_fused_needs_ball_samples_and_the_mlp() -> None:
    model = build_model(seed=0).to(DEV)
    x, y = torch.randn(2, D, device=DEV), torch.randint(0, 12, (2,), device=DEV)
    with pytest.raises(FusedUnavailable, match="ball samples and the MLP"):
        smoothed_max_ce_backward(model, sm.tensor_source(torch.randn(2, 10, D, device=DEV), 10),
                                 y, 1.0, kernel=Kernel.FUSED)
    with pytest.raises(FusedUnavailable, match="float32"):
        fused_scores(sm._stacked_layers(model_as_pack(model), True), x.double()[None], y[None],
                     _keys([0]), 0.1, 10)


def test_cpu_without_the_interpreter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training on the CPU keeps the torch path: an explicit fused kernel is refused in one
    line, auto means chunked."""
    from trainers.methods.robust import robust_kernel
    from trainers.spec import TrainSettings

    monkeypatch.setattr(fused_ce, "_INTERPRETED", False)
    cpu = torch.device("cpu")
    with pytest.raises(FusedUnavailable, match="runs on CUDA"):
        robust_kernel(TrainSettings(robust_kernel="fused"), cpu)
    assert robust_kernel(TrainSettings(), cpu) == (Kernel.CHUNKED, Precision.IEEE)
    assert robust_kernel(TrainSettings(robust_kernel="chunked", robust_precision="bf16x3"),
                         cpu) == (Kernel.CHUNKED, Precision.IEEE)


def test_certificate_constants_grow_with_width() -> None:
    """A wider layer sums more products: its bound is larger (gamma_n grows with n)."""
    small = Certificate.build(sm._stacked_layers(model_as_pack(build_model(hidden=50, seed=0)),
                                                 True), Precision.TF32X3)
    large = Certificate.build(sm._stacked_layers(model_as_pack(build_model(hidden=400, seed=0)),
                                                 True), Precision.TF32X3)
    assert large.a2 > small.a2 > 0


@pytest.mark.parametrize("precision", [Precision.IEEE, Precision.BF16X3])
def test_doctor_comparison(precision: Precision) -> None:
    """The doctor's comparison passes on a correct kernel (here under the interpreter) and sees
    a kernel whose certificate is too small."""
    from trainers.kernels.check import compare_fused

    torch.manual_seed(20)
    model = _spread_model(21).to(DEV)
    x, y = torch.randn(2, D, device=DEV), torch.randint(0, 12, (2,), device=DEV)
    check = compare_fused(model, x, y, 77, 3.0, 200, 1e-4, precision)
    assert check.ok, check
    assert check.samples_identical and 0 < check.kept <= check.candidates <= check.samples


def test_doctor_comparison_catches_a_bound_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainers.kernels import certificate
    from trainers.kernels.check import compare_fused

    monkeypatch.setattr(certificate, "SLACK", 0.0)
    real = certificate.Certificate.build

    def tiny(layers: list[tuple[Tensor, Tensor]], precision: Precision,
             bound_inflation: float = 1.0) -> certificate.Certificate:
        return real(layers, precision, bound_inflation * 1e-9)

    monkeypatch.setattr(fused_ce.Certificate, "build", tiny)
    torch.manual_seed(20)
    check = compare_fused(_spread_model(21).to(DEV), torch.randn(2, D, device=DEV),
                          torch.randint(0, 12, (2,), device=DEV), 77, 3.0, 200, 1e-4,
                          Precision.BF16X3)
    assert not check.ok and check.bound_violations > 0


def test_doctor_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """`drosweep doctor`'s fused check, run here on a small batch: every precision passes and
    is printed (on the GPU it runs on the device's tensor cores)."""
    from cluster import doctor

    monkeypatch.setattr(doctor, "FUSED_BATCH", 2)
    monkeypatch.setattr(doctor, "FUSED_N", 150)
    lines: list[str] = []
    report = doctor.DoctorReport(str(DEV))
    doctor.check_fused(DEV, lines.append, report)
    assert report.ok, report.failures
    assert [line.split()[1] for line in lines] == ["ieee", "tf32x3", "bf16x3"]
    assert all("bit-identical" in line and line.endswith(" ok") for line in lines)


def test_a_cpu_study_refuses_the_fused_kernel_at_load() -> None:
    """A study whose tasks run on the CPU (cluster.device = 'cpu') cannot ask for the fused
    kernel: one line at load, before anything is planned or submitted."""
    from pathlib import Path

    from jobs import StudyError, load_study

    smoke = Path(__file__).resolve().parents[3] / "studies" / "smoke.toml"
    with pytest.raises(StudyError, match=r"'training.robust_kernel': 'fused' runs on CUDA"):
        load_study(smoke, overrides=["training.robust_kernel=\"fused\""])
    assert load_study(smoke, overrides=["training.robust_kernel=\"chunked\""]).settings \
        .robust_kernel == "chunked"
