from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainers.data import DataError, load_avila, make_synthetic, subset_train
from trainers.model import MLP, build_model, relu_draws
from trainers.spec import Method, SpecError, TrainSettings, TrainSpec, n_ball_samples


def test_n_ball_samples_matches_paper() -> None:
    assert [n_ball_samples(e) for e in (0.01, 0.1, 0.2, 0.3)] == [746, 4196, 28592, 194796]


def test_spec_roundtrip_and_validation() -> None:
    spec = TrainSpec(Method.ROBUST, 0.1, 7, TrainSettings(epochs=3, temp_steps=10))
    assert TrainSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="radius"):
        TrainSpec(Method.ROBUST, -0.1, 0).validate()
    with pytest.raises(SpecError, match="needs a radius > 0"):
        TrainSpec(Method.ADVERSARIAL, 0.0, 0).validate()
    with pytest.raises(SpecError, match="unknown method"):
        TrainSpec("nope", 0.1, 0)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="unknown training setting"):
        TrainSettings.from_dict({"epochz": 3})
    with pytest.raises(SpecError, match="'batch_size' must be a positive integer"):
        TrainSettings(batch_size=0).validate()


def test_robust_kernel_settings_and_removed_ones() -> None:
    """'robust_kernel' and 'robust_precision' are written only when changed, so settings saved
    before they existed still compare equal; the removed 'fast_sampling' and 'preselect' are
    dropped at their default and refused when true, with the setting that replaces them."""
    d = TrainSettings().to_dict()
    assert "robust_kernel" not in d and "robust_precision" not in d
    on = TrainSettings(robust_kernel="fused", robust_precision="bf16x3")
    assert on.to_dict()["robust_kernel"] == "fused"
    assert TrainSettings.from_dict(on.to_dict()) == on
    for removed in ("fast_sampling", "preselect"):
        assert TrainSettings.from_dict({removed: False}) == TrainSettings()
        with pytest.raises(SpecError, match=rf"{removed}.*removed.*robust_kernel = 'fused'"):
            TrainSettings.from_dict({removed: True})
    with pytest.raises(SpecError, match=r"'robust_kernel' must be one of \['auto', 'chunked'"):
        TrainSettings.from_dict({"robust_kernel": "fast"})
    with pytest.raises(SpecError, match="'robust_precision' must be one of"):
        TrainSettings.from_dict({"robust_precision": "fp16"})


def test_avila_loader(avila_data_dir: Path) -> None:
    data = load_avila(avila_data_dir)
    assert data.x_train.shape == (10430, 8) and data.x_test.shape == (10437, 8)
    assert data.classes[0] == "A" and data.classes[-1] == "Y" and data.n_classes == 12
    assert torch.allclose(data.x_train.mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(8), atol=1e-4)
    assert data.y_train.bincount().tolist()[:2] == [4286, 5]


def test_avila_loader_tolerates_header_and_rejects_wrong_files(avila_data_dir: Path,
                                                               tmp_path: Path) -> None:
    good_tr = (avila_data_dir / "avila-tr.txt").read_text()
    good_ts = (avila_data_dir / "avila-ts.txt").read_text()
    (tmp_path / "avila-tr.txt").write_text("F1,F2,F3,F4,F5,F6,F7,F8,F9,F10,Class\n" + good_tr)
    (tmp_path / "avila-ts.txt").write_text(good_ts)
    assert load_avila(tmp_path).x_train.shape == (10430, 8)
    (tmp_path / "avila-tr.txt").write_text("\n".join(good_tr.splitlines()[:-5]) + "\n")
    with pytest.raises(DataError, match=r"avila-tr\.txt: 10425 data rows, expected 10430"):
        load_avila(tmp_path)
    (tmp_path / "avila-tr.txt").write_text(good_tr.replace(",A\n", ",Q\n", 1))
    with pytest.raises(DataError, match="unknown class 'Q'"):
        load_avila(tmp_path)
    with pytest.raises(DataError, match="drosweep data fetch"):
        load_avila(tmp_path / "missing")


def test_subset_and_synthetic() -> None:
    data = make_synthetic()
    sub = subset_train(data, 100, seed=1)
    assert sub.x_train.shape == (100, 8) and torch.equal(sub.x_test, data.x_test)
    assert torch.equal(subset_train(data, 100, seed=1).y_train, sub.y_train)


def test_build_model_uses_no_global_rng() -> None:
    state = torch.random.get_rng_state()
    model = build_model(seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    torch.manual_seed(5)
    reference = MLP()  # nn.Linear's default initialisation from the same seed
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 reference.state_dict().values(), strict=True))
    assert not torch.equal(build_model(seed=6).layer1.weight, model.layer1.weight)


def test_generalized_relu_subgradient_at_zero() -> None:
    torch.manual_seed(0)
    model = MLP()
    model.set_relu_key(3)
    with torch.no_grad():
        model.layer1.weight.zero_()
        model.layer1.bias.zero_()   # every first-layer pre-activation is exactly 0
    x = torch.randn(4, 8)
    model(x).sum().backward()
    grad = model.layer1.bias.grad
    assert grad is not None
    # with plain ReLU this gradient would be exactly zero; the subgradient u in [0,1) scales it
    u = relu_draws([3], torch.device("cpu"))[0, 0]  # the first layer's draw of stream 3
    expected = u * (model.layer2.weight.t() @ _relu_mask_grad(model, x)).sum(1)
    assert 0 <= float(u) < 1
    assert torch.allclose(grad, expected, atol=1e-6)  # float32: the same products, summed in another order
    assert float(grad.abs().sum()) > 0
    model.zero_grad()
    model.set_relu_key(None)  # no stream: PyTorch's subgradient 0
    model(x).sum().backward()
    assert model.layer1.bias.grad is not None and not model.layer1.bias.grad.any()


def _relu_mask_grad(model: MLP, x: torch.Tensor) -> torch.Tensor:
    """d(sum of outputs)/d(layer-2 pre-activation) for the zeroed first layer."""
    with torch.no_grad():
        h1 = torch.zeros(x.shape[0], model.layer1.out_features)
        pre2 = model.layer2(h1)
        mask = (pre2 > 0).to(x.dtype)  # no exact zeros here: biases are random
        return (mask * model.layer3.weight.sum(0)).t()


def test_cuda_chunk_size_is_the_gpu_chunk_and_stays_out_of_existing_fingerprints() -> None:
    s = TrainSettings()
    assert s.chunk_for("cpu") == s.chunk_size == 65536
    assert s.chunk_for("cuda") == s.cuda_chunk_size == 1 << 20
    assert "cuda_chunk_size" not in s.to_dict()  # trials planned before it existed still match
    small = TrainSettings.from_dict({"cuda_chunk_size": 4096})
    assert small.to_dict()["cuda_chunk_size"] == 4096 and small.chunk_for("cuda") == 4096
    assert TrainSettings.from_dict(small.to_dict()) == small
    with pytest.raises(SpecError, match="'cuda_chunk_size' must be a positive integer"):
        TrainSettings.from_dict({"cuda_chunk_size": 0})


def test_defaults_are_the_papers_settings() -> None:
    """The defaults are the study of the paper (README, "The study") and the documented pruning
    threshold (README: the dropped mass per point is at most N * 1e-13): a changed default
    changes every study that leaves the setting out, so each is pinned here."""
    s = TrainSettings()
    assert (s.epochs, s.batch_size, s.lr, s.lr_step_size, s.lr_gamma, s.hidden) \
        == (1500, 100, 0.2, 50000, 0.1, 200)
    assert (s.n_base, s.n_growth, s.n_eps_scale) == (616, 100.0, 0.24)
    assert (s.temp_start, s.temp_end, s.temp_steps, s.temp_schedule.value) \
        == (1.0, 1e-4, 1500, "step")
    assert (s.pgd_steps, s.pgd_step_factor, s.adv_start_epoch) == (40, 2.5, 3)
    assert s.langevin_points == 400
    assert s.prune_threshold == 1e-13
