"""The static-shape stages of a step: no host wait inside, and captured replays (CUDA graphs'
semantics, checked on the CPU with `ReplayCapture`) bit-identical to the plain eager step."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from trainers import rng
from trainers.attacks import pgd_linf
from trainers.checkpoint import RESUMABLE_DIFFERENCES
from trainers.data import make_synthetic
from trainers.device import FP32
from trainers.graphs import CudaGraphCapture, ReplayCapture, StepRunner, default_capture, sgd_update
from trainers.hostsync import CPU_ONLY, record_waits
from trainers.loop import PackState, TrainPaths
from trainers.methods import StepContext, StepStreams, method_parts, step_keys, temperature
from trainers.methods.base import batch_mean_ce, set_relu_draws
from trainers.methods.langevin import langevin_trajectory
from trainers.model import relu_draws
from trainers.rng import Purpose, stream_key
from trainers.smoothmax import smoothed_max_ce_backward, tensor_source, uniform_ball_source
from trainers.spec import Method, SpecError, TrainSettings, TrainSpec, n_ball_samples

# 250 rows in batches of 100: a last batch of 50 (a second shape); lr decays every 3 steps;
# PGD from the second epoch; T falls to 1e-4 within the steps checked
SMALL = {"epochs": 3, "train_subset": 250, "temp_steps": 6, "pgd_steps": 4,
         "langevin_points": 8, "adv_start_epoch": 1, "n_base": 16, "chunk_size": 4096,
         "lr_step_size": 3}
STEPS = 9
SEEDS = (3, 4)
SMALL_LR = TrainSettings().lr


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread: None) -> Iterator[None]:
    yield


def _pack(method: Method, **over: object) -> PackState:
    settings = TrainSettings.from_dict({**SMALL, **over})
    radius = 0.0 if method is Method.REGULAR else 0.1
    specs = [TrainSpec(method, radius, s, settings, "synthetic") for s in SEEDS]
    data = make_synthetic(n_train=250, n_test=1)
    paths = [TrainPaths(Path(os.devnull), Path(os.devnull)) for _ in SEEDS]
    return PackState(specs, paths, [data] * len(SEEDS), torch.device("cpu"), FP32)


def _reference_step(pack: PackState) -> None:
    """The training step written out plainly: Python float temperature and learning rate,
    integer stream keys, torch.optim.SGD's own update."""
    s, spec, step = pack.spec.settings, pack.spec, pack.step
    if pack.order is None:
        pack.order = torch.stack([rng.permutation(stream_key(t.spec.seed, Purpose.DATA,
                                                              pack.epoch), pack.y.shape[1])
                                  for t in pack.trials])
    lo = pack.batch_index * s.batch_size
    idx = pack.order[:, lo:lo + s.batch_size]
    x, y = pack.x[pack.pack_rows, idx], pack.y[pack.pack_rows, idx]
    seeds = [t.spec.seed for t in pack.trials]

    def keys(purpose: Purpose) -> list[int]:
        return [stream_key(seed, purpose, step) for seed in seeds]

    t = temperature(s, step, pack.epoch)
    model = pack.model
    model.set_relu_keys(keys(Purpose.RELU))
    pack.optimizer.zero_grad(set_to_none=True)
    if spec.method is Method.ROBUST:
        source = uniform_ball_source(x, spec.radius, n_ball_samples(spec.radius, s),
                                     s.chunk_size, keys(Purpose.BALL))
        smoothed_max_ce_backward(model, source, y, t, threshold=s.prune_threshold)
    elif spec.method is Method.LANGEVIN:
        u = rng.uniform(rng.keys_tensor(keys(Purpose.LANGEVIN)),
                        [(0, s.langevin_points - 1), (0, x.shape[1])],
                        [s.langevin_points - 1, x.shape[1]], x.shape[2])
        traj = langevin_trajectory(model, x, y, spec.radius, s.langevin_points,
                                   s.langevin_step_factor * spec.radius, s.langevin_noise, u)
        smoothed_max_ce_backward(model, tensor_source(traj, s.chunk_size), y, t,
                                 threshold=s.prune_threshold)
    else:
        if spec.method is Method.ADVERSARIAL and pack.epoch >= s.adv_start_epoch:
            size = s.pgd_step_factor * spec.radius / s.pgd_steps
            start = rng.uniform(rng.keys_tensor(keys(Purpose.PGD_START)), [(0, x.shape[1])],
                                [x.shape[1]], x.shape[2])
            x = pgd_linf(model, x, y, spec.radius, s.pgd_steps, size, random_start=size,
                         start_noise=start)
        batch_mean_ce(model, x, y).sum().backward()
    pack.optimizer.step()
    pack.scheduler.step()
    pack.step += 1
    pack.batch_index += 1
    if pack.batch_index >= pack.n_batches:
        pack.epoch, pack.batch_index, pack.order = pack.epoch + 1, 0, None


def _weights(pack: PackState) -> list[Tensor]:
    return [p.detach().clone() for p in pack.model.parameters()]


CASES = [Method.REGULAR, Method.ADVERSARIAL, Method.LANGEVIN, Method.ROBUST]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
@pytest.mark.parametrize("method", CASES)
def test_steps_with_device_rate_equal_the_plain_step(method: Method) -> None:
    """The runner's step (0-d tensor learning rate, keys table, eager or replayed as a graph)
    gives bit-identical weights to the plain step, over an uneven last batch, a rate decay, the
    start of PGD and the temperature's fall."""
    reference, eager, replayed = (_pack(method) for _ in range(3))
    replayed.runner = StepRunner(method_parts(method), ReplayCapture())
    assert eager.runner.capture is None  # on the CPU every step is eager
    for _ in range(STEPS):
        _reference_step(reference)
        eager.run_step()
        replayed.run_step()
        want = _weights(reference)
        assert all(torch.equal(a, b) for a, b in zip(want, _weights(eager), strict=True))
        assert all(torch.equal(a, b) for a, b in zip(want, _weights(replayed), strict=True))
    assert reference.optimizer.param_groups[0]["lr"] < SMALL_LR
    graphs = {key[0] for key in replayed.runner.graphs}
    expected = {Method.REGULAR: {"regular"}, Method.ADVERSARIAL: {"adversarial-clean",
                                                                  "adversarial-pgd"},
                Method.LANGEVIN: {"langevin-trajectory"}, Method.ROBUST: set()}[method]
    assert graphs == expected
    if method is not Method.ROBUST:  # a graph per batch shape: 100 and the last 50
        assert {key[2][1] for key in replayed.runner.graphs} == {100, 50}


@pytest.mark.parametrize("method", list(Method))
def test_a_step_waits_on_the_host_only_where_the_smoothed_max_selects(method: Method) -> None:
    """Inside the static stages: no call that waits on the device, nothing made from host data.
    The whole step adds only the smoothed max's one read of the selection (and the ball samples'
    keys), and, once per block of steps, the copy of the block's keys (`StepStreams`)."""
    pack = _pack(method, adv_start_epoch=0)
    pack.run_step()  # the epoch's data order is made once, before its first step
    parts = method_parts(method)
    seeds = [t.spec.seed for t in pack.trials]
    ctx = StepContext(pack.spec, pack.step, pack.epoch, 1e-4, seeds,
                      step_keys(seeds, pack.step, pack.device))
    stage = parts.stage(ctx)
    assert (stage is None) == (method is Method.ROBUST)
    if stage is not None:
        x, y = pack.x[:, :100], pack.y[:, :100]
        static = ctx.static(x.device)
        with record_waits() as waits:
            set_relu_draws(pack.model, static)
            stage.run(pack.model, x, y, static)
        assert waits.on_cuda() == []
        assert set(waits.calls) <= set(CPU_ONLY)  # the ReLU's zero check, on the CPU only
        pack.model.zero_grad(set_to_none=True)
    expected = []
    if method is Method.ROBUST:
        expected.append(("torch.tensor", "trainers/rng.py"))  # the ball samples' keys
    if method in (Method.ROBUST, Method.LANGEVIN):
        expected.append(("tolist", "trainers/smoothmax.py"))
    with record_waits() as waits:
        pack.run_step()
    assert waits.on_cuda() == expected
    # a step that starts a block (not an epoch's last) makes the block's keys table
    pack.step, pack.batch_index = pack.streams.block, 0
    with record_waits() as waits:
        pack.run_step()
    assert waits.on_cuda() == [("torch.tensor", "trainers/rng.py"), *expected]


def test_the_checker_sees_each_kind_of_wait() -> None:
    t = torch.arange(4.0)
    with record_waits() as waits:
        t.sum().item()
        bool(t.any())
        int(t[0])
        float(t[1])
        torch.nonzero(t)
        t[t > 1]
        t.cpu()
        torch.tensor([1.0])
        t.tolist()
    names = [name for name, _ in waits.calls]
    assert names == ["item", "__bool__", "__int__", "__float__", "torch.nonzero",
                     "boolean index", "cpu", "torch.tensor", "tolist"]
    assert {file for _, file in waits.calls} == {"trainers/test_step_graphs.py"}
    bool(t.any())  # restored afterwards
    assert len(waits.calls) == 9 and "__bool__" not in vars(torch.Tensor)


def test_step_streams_give_each_steps_keys_and_draws_whatever_the_start() -> None:
    """Made a block at a time, read in any order (a resumed run starts mid-block): each step's
    table is `step_keys` and its draws are `relu_draws` of its RELU keys, per layer and trial."""
    seeds = [3, 4, 11]
    streams = StepStreams(seeds, torch.device("cpu"), block=4)
    for step in (6, 7, 8, 0, 3, 4, 13, 5):
        table, u = streams.at(step)
        assert torch.equal(table, step_keys(seeds, step, torch.device("cpu")))
        draws = relu_draws([stream_key(s, Purpose.RELU, step) for s in seeds], torch.device("cpu"))
        assert u.shape == (2, len(seeds), 1, 1)
        assert torch.equal(u[:, :, 0, 0], draws.t())


def test_sgd_update_equals_torch_sgd_on_the_cpu() -> None:
    gen = torch.Generator().manual_seed(0)
    for shape in [(12,), (200,), (12, 200), (200, 200), (3, 200, 8), (51, 1, 12)]:
        for lr in (0.2, 0.02, 0.002, 1e-5):
            p = torch.nn.Parameter(torch.randn(shape, generator=gen))
            p.grad = torch.randn(shape, generator=gen) * 1e-2
            ref = torch.nn.Parameter(p.detach().clone())
            ref.grad = p.grad.clone()
            torch.optim.SGD([ref], lr=lr).step()
            sgd_update([p], torch.tensor(lr))
            assert torch.equal(p, ref), (shape, lr)


def test_runner_needs_cleared_gradients() -> None:
    pack = _pack(Method.REGULAR)
    pack.run_step()
    seeds = list(SEEDS)
    ctx = StepContext(pack.spec, 1, 0, 1.0, seeds, step_keys(seeds, 1, pack.device))
    with pytest.raises(RuntimeError, match="gradients cleared"):
        pack.runner(pack.model, pack.x[:, :100], pack.y[:, :100], ctx, pack.lr)


def test_capture_on_cuda_only_and_the_setting() -> None:
    assert default_capture(torch.device("cpu"), True) is None
    assert isinstance(default_capture(torch.device("cuda"), True), CudaGraphCapture)
    assert default_capture(torch.device("cuda"), False) is None
    off = TrainSettings.from_dict({"cuda_graphs": False})
    assert off.to_dict()["cuda_graphs"] is False
    assert "cuda_graphs" not in TrainSettings().to_dict()  # spec files from before still match
    assert "cuda_graphs" in RESUMABLE_DIFFERENCES  # it changes no result
    with pytest.raises(SpecError, match="'cuda_graphs' must be true or false"):
        TrainSettings.from_dict({"cuda_graphs": "no"})


class _FailingCapture(ReplayCapture):
    """Warms up (changing the weights, as a real warm-up does), then fails to capture."""

    def capture(self, fn: Any, reset: Any, slots: Any) -> Any:
        reset()
        fn()
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_a_failed_capture_runs_eagerly_with_the_same_results() -> None:
    eager, fallback = _pack(Method.ADVERSARIAL), _pack(Method.ADVERSARIAL)
    fallback.runner = StepRunner(method_parts(Method.ADVERSARIAL), _FailingCapture())
    with pytest.warns(UserWarning, match=r"capture of the adversarial-\w+ step failed "
                                         r"\(operation not permitted when stream is capturing\)"):
        for _ in range(4):
            eager.run_step()
            fallback.run_step()
    assert all(torch.equal(a, b) for a, b in zip(_weights(eager), _weights(fallback),
                                                 strict=True))
    assert set(fallback.runner.graphs.values()) == {None}


def test_train_command_switches_graphs_off() -> None:
    from drosweep.cli import build_parser
    from drosweep.cmd_train import _spec_from_args

    base = ["train", "-t", "regular", "-r", "0", "-s", "/tmp/x", "-i", "1"]
    assert _spec_from_args(build_parser().parse_args(base)).settings.cuda_graphs
    off = _spec_from_args(build_parser().parse_args([*base, "--no-cuda-graphs"]))
    assert off.settings.cuda_graphs is False
