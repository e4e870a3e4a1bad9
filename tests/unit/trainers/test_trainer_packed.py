"""A pack of k trials trains what k separate runs train, and resumes every trial exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainers.loop import TrainPaths, train, train_pack
from trainers.spec import Method, SpecError, TrainSettings, TrainSpec

SMALL = {"epochs": 2, "temp_steps": 10, "pgd_steps": 4, "langevin_points": 8,
         "adv_start_epoch": 1, "n_base": 16, "chunk_size": 4096}
SEEDS = (11, 12, 13)


def _specs(method: Method, **over: object) -> list[TrainSpec]:
    settings = TrainSettings.from_dict({**SMALL, **over})
    radius = 0.0 if method is Method.REGULAR else 0.1
    return [TrainSpec(method, radius, seed, settings, "synthetic") for seed in SEEDS]


def _paths(folder: Path, seed: int) -> TrainPaths:
    return TrainPaths(folder / f"model_{seed}.pt", folder / f"ckpt_{seed}.pt")


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("method", list(Method))
def test_packed_equals_separate(method: Method, tmp_path: Path, torch_one_thread: None) -> None:
    """regular, adversarial and langevin: bit-identical on one CPU thread (each trial's batched
    GEMM is its own; with many threads, and on CUDA, the reductions split by shape and the
    weights agree to float rounding: 1.4e-7 with 16 Xeon threads, 2.3e-7 on an H200).
    robust: the long reductions of the weight gradient over B*N samples are blocked differently
    for a batch of k matrices, so the weights agree to float rounding, amplified by 1/T as the
    temperature falls: 2.6e-5 relative at most after these 12 steps (T -> 1e-4), checked within
    1e-4. A trial drawing another trial's samples differs by O(1)."""
    specs = _specs(method)
    packed = train_pack(specs, [_paths(tmp_path / "packed", s.seed) for s in specs],
                        progress=False)
    separate = [train(s, _paths(tmp_path / "separate", s.seed), progress=False) for s in specs]
    for spec, p, s in zip(specs, packed, separate, strict=True):
        assert p.finished and s.finished and p.steps == s.steps == 12
        a = _load(tmp_path / "packed" / f"model_{spec.seed}.pt")
        b = _load(tmp_path / "separate" / f"model_{spec.seed}.pt")
        assert list(a) == ["layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias",
                           "layer3.weight", "layer3.bias"]
        for key in a:
            if method is not Method.ROBUST:
                assert torch.equal(a[key], b[key]), (spec.seed, key)
            else:
                err = ((a[key] - b[key]).abs().max() / b[key].abs().max()).item()
                assert err <= 1e-4, (spec.seed, key, err)
    # trials differ from one another: the pack did not train one model three times
    w = [_load(tmp_path / "packed" / f"model_{s}.pt")["layer1.weight"] for s in SEEDS]
    assert not torch.equal(w[0], w[1])


def test_packed_stop_resume_and_uneven_steps(tmp_path: Path) -> None:
    specs = _specs(Method.ADVERSARIAL)
    ref = train_pack(specs, [_paths(tmp_path / "ref", s.seed) for s in specs], progress=False)
    folder = tmp_path / "run"
    # one trial runs ahead alone, then the pack is stopped part-way and resumed
    train(specs[0], _paths(folder, specs[0].seed), progress=False,
          should_stop=iter([False] * 8 + [True]).__next__)
    calls = {"n": 0}

    def stop_after_3() -> bool:
        calls["n"] += 1
        return calls["n"] == 3

    part = train_pack(specs, [_paths(folder, s.seed) for s in specs], progress=False,
                      should_stop=stop_after_3)
    assert not any(r.finished for r in part)
    done = train_pack(specs, [_paths(folder, s.seed) for s in specs], progress=False)
    assert all(r.finished for r in done)
    for spec, r in zip(specs, ref, strict=True):
        a = _load(tmp_path / "ref" / f"model_{spec.seed}.pt")
        b = _load(folder / f"model_{spec.seed}.pt")
        assert all(torch.equal(a[k], b[k]) for k in a), spec.seed
        assert r.model_sha256 is not None


def test_pack_rejects_mixed_trials(tmp_path: Path) -> None:
    a = _specs(Method.REGULAR)[0]
    b = _specs(Method.ROBUST)[0]
    with pytest.raises(SpecError, match="one method, radius"):
        train_pack([a, b], [_paths(tmp_path, 1), _paths(tmp_path, 2)], progress=False)
    with pytest.raises(SpecError, match="distinct seeds"):
        train_pack([a, a], [_paths(tmp_path, 1), _paths(tmp_path, 2)], progress=False)
