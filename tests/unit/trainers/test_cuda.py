"""What holds on CUDA and can only be checked there: the samples equal the CPU's bit for bit,
captured CUDA-graph replays equal eager steps bit for bit, and a CUDA run stopped and resumed
equals an uninterrupted one bit for bit. Marked `cuda` (`pytest -m cuda` on the GPU machine);
skipped where torch sees no CUDA device. On the CPU the same logic is tested with
`ReplayCapture` (test_step_graphs.py) and the CPU resume tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import Tensor

from trainers import rng
from trainers.data import make_synthetic
from trainers.device import FP32
from trainers.graphs import CudaGraphCapture
from trainers.loop import PackState, TrainPaths, train_pack
from trainers.methods import StepStreams
from trainers.rng import Purpose
from trainers.smoothmax import uniform_ball_source
from trainers.spec import Method, TrainSettings, TrainSpec

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA device (run `pytest -m cuda` on a GPU machine)"),
]
CUDA = torch.device("cuda")
SEEDS = (3, 4, 5)


def test_uniform_draws_equal_the_cpu_bit_for_bit() -> None:
    keys = [rng.stream_key(s, Purpose.BALL, 7) for s in SEEDS]
    for dtype in (torch.float32, torch.float64):
        for d in (1, 8, 9):
            cpu = rng.uniform(rng.keys_tensor(keys), [(0, 40), (5, 300)], [40, 1000], d, dtype)
            gpu = rng.uniform(rng.keys_tensor(keys, CUDA), [(0, 40), (5, 300)], [40, 1000], d,
                              dtype)
            assert gpu.device.type == "cuda"
            assert torch.equal(cpu, gpu.cpu()), (dtype, d)


def test_ball_samples_and_step_draws_equal_the_cpu_bit_for_bit() -> None:
    torch.manual_seed(0)
    x = torch.rand(len(SEEDS), 20, 8)
    keys = [rng.stream_key(s, Purpose.BALL, 0) for s in SEEDS]
    n = 5000
    cpu = uniform_ball_source(x, 0.3, n, 4096, keys)
    gpu = uniform_ball_source(x.to(CUDA), 0.3, n, 1 << 16, keys)
    a = torch.cat([cpu.chunk(c) for c in range(cpu.n_chunks)], dim=2)
    b = torch.cat([gpu.chunk(c) for c in range(gpu.n_chunks)], dim=2)
    assert a.shape == (len(SEEDS), 20, n, 8)
    assert torch.equal(a, b.cpu())
    on_cpu, on_gpu = StepStreams(list(SEEDS), torch.device("cpu")), StepStreams(list(SEEDS), CUDA)
    for step in (0, 1, 1000, 123_456):
        (keys_c, relu_c), (keys_g, relu_g) = on_cpu.at(step), on_gpu.at(step)
        assert torch.equal(keys_c, keys_g.cpu()) and torch.equal(relu_c, relu_g.cpu()), step


SMALL = {"epochs": 3, "train_subset": 250, "temp_steps": 6, "pgd_steps": 4,
         "langevin_points": 8, "adv_start_epoch": 1, "n_base": 16, "chunk_size": 4096,
         "lr_step_size": 3}


def _pack(method: Method, graphs: bool) -> PackState:
    settings = TrainSettings.from_dict({**SMALL, "cuda_graphs": graphs})
    radius = 0.0 if method is Method.REGULAR else 0.1
    specs = [TrainSpec(method, radius, s, settings, "synthetic") for s in SEEDS]
    data = make_synthetic(n_train=250, n_test=1)
    paths = [TrainPaths(Path(os.devnull), Path(os.devnull)) for _ in SEEDS]
    return PackState(specs, paths, [data] * len(SEEDS), CUDA, FP32)


def _weights(pack: PackState) -> list[Tensor]:
    return [p.detach().clone() for p in pack.model.parameters()]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
@pytest.mark.parametrize("method", list(Method))
def test_graph_replays_equal_eager_steps_bit_for_bit(method: Method) -> None:
    """9 steps over an uneven last batch (a second graph), a rate decay, the start of PGD and
    the temperature's fall: every step's weights equal, captured or not."""
    eager, replayed = _pack(method, graphs=False), _pack(method, graphs=True)
    assert eager.runner.capture is None
    assert isinstance(replayed.runner.capture, CudaGraphCapture)
    for step in range(9):
        eager.run_step()
        replayed.run_step()
        assert all(torch.equal(a, b) for a, b in zip(_weights(eager), _weights(replayed),
                                                     strict=True)), step
    if method is not Method.ROBUST:  # robust's smoothed max selects on the host: not captured
        assert any(g is not None for g in replayed.runner.graphs.values())


RESUME = {"epochs": 3, "pgd_steps": 3, "langevin_points": 6, "adv_start_epoch": 1,
          "checkpoint_every": 1000, "n_base": 12, "lr_step_size": 4, "lr_gamma": 0.5,
          "temp_steps": 10}


@pytest.mark.parametrize("method", list(Method))
def test_cuda_resume_is_bit_identical(method: Method, tmp_path: Path) -> None:
    """Stopped between two rate decays and before the temperature's end, resumed on CUDA."""
    settings = TrainSettings.from_dict(RESUME)
    radius = 0.0 if method is Method.REGULAR else 0.1
    specs = [TrainSpec(method, radius, s, settings, "synthetic") for s in SEEDS]

    def paths(folder: Path) -> list[TrainPaths]:
        return [TrainPaths(folder / f"m{s}.pt", folder / f"c{s}.pt") for s in SEEDS]

    full = train_pack(specs, paths(tmp_path / "full"), device="cuda", progress=False)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] == 7

    part = train_pack(specs, paths(tmp_path / "part"), device="cuda", progress=False,
                      should_stop=stop)
    assert all(not r.finished and r.steps == 7 for r in part)
    rest = train_pack(specs, paths(tmp_path / "part"), device="cuda", progress=False)
    assert all(r.resumed_from == 7 and r.finished for r in rest)
    for a, b, r, f in zip(paths(tmp_path / "full"), paths(tmp_path / "part"), rest, full,
                          strict=True):
        wa, wb = torch.load(a.model, weights_only=True), torch.load(b.model, weights_only=True)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        assert r.model_sha256 == f.model_sha256
