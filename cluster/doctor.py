"""Checks one machine's training device end to end and measures its training rates.

What it does, in order (each step prints its result as it goes):

1. the device: its name, SM count (CUDA) or threads, the pinned precision flags and the TF32
   override variable;
2. per method, a few steps trained straight and the same stopped and resumed: the weights must
   be bit-identical;
3. on CUDA, the same seeds on the CPU and on CUDA: the samples must be bit-identical, the
   weights agree to float rounding (the largest relative difference is printed);
   the steps with their static stage replayed as CUDA graphs against the same steps run
   eagerly (setting cuda_graphs): the weights must be bit-identical; and the static stages
   must not wait on the host (on every device: trainers.hostsync; on CUDA also under
   torch.cuda.set_sync_debug_mode("error")); the fused robust kernel against the chunked fp32
   pass, per precision (trainers.kernels.check);
4. the seconds of a robust step at eps in {0.01, 0.1, 0.3}, T=1 and T=1e-4, and of a packed
   regular / adversarial / langevin step at k in {1, 8, 51} trials, each taken as training takes
   it (data order, CUDA graph replays, the update), written as a calibration file
   (cluster.calibration) the cost model reads.

Without CUDA it runs the CPU half and says what it skipped; `quick` keeps the CPU half to a minute
or two on a small machine (the slowest timings are skipped, and said so).
"""

from __future__ import annotations

import math
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from cluster import calibration
from cluster.calibration import Rate
from trainers import rng
from trainers.data import make_synthetic
from trainers.device import (
    FP32,
    TF32_OVERRIDE_ENV,
    device_model,
    pin_precision,
    precision_flags,
    resolve_device,
)
from trainers.hostsync import record_waits
from trainers.kernels import fused_ce
from trainers.kernels.certificate import Precision
from trainers.kernels.check import compare_fused
from trainers.loop import PackState, TrainPaths, derive_seed, train
from trainers.methods import StepContext, method_parts, step_keys
from trainers.methods.base import set_relu_draws
from trainers.model import build_model
from trainers.packed import PackedMLP
from trainers.spec import Method, TrainSettings, TrainSpec

ROBUST_EPS = (0.01, 0.1, 0.3)
TEMPERATURES = (1.0, 1e-4)
PACKS = (1, 8, 51)
PACKED_METHODS = (Method.REGULAR, Method.ADVERSARIAL, Method.LANGEVIN)
PACKED_RADIUS = 0.1
BATCH = 100
# a few steps of every method on synthetic data: seconds on a CPU
CHECK_SETTINGS = {"epochs": 2, "train_subset": 300, "temp_steps": 6, "pgd_steps": 4,
                  "langevin_points": 8, "adv_start_epoch": 1, "n_base": 16, "chunk_size": 4096,
                  "checkpoint_every": 1000}
STOP_AFTER = 3
# --quick: a minute or two on 2 CPU cores
QUICK_EPS = 0.01
QUICK_PACK = {Method.REGULAR: 8, Method.ADVERSARIAL: 8, Method.LANGEVIN: 1}
# the largest relative weight difference between CPU and CUDA after the check's steps that
# counts as float rounding (the smoothed max amplifies rounding by 1/T as T falls)
CROSS_DEVICE_TOL = 1e-3
# the fused kernel's check: B points of synthetic data, N samples each, at T = 1e-4
FUSED_BATCH = 100
FUSED_N = 4096
FUSED_RADIUS = 1.0
FUSED_KEY = 12345
# the timed steps use the paper's settings, changed by these (none: tests shrink them)
TIMING_OVERRIDES: dict[str, object] = {}


@dataclass
class DoctorReport:
    device: str
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rates: list[Rate] = field(default_factory=list)
    calibration_path: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


Say = Callable[[str], None]


def _check_spec(method: Method) -> TrainSpec:
    radius = 0.0 if method is Method.REGULAR else 0.1
    return TrainSpec(method, radius, 5, TrainSettings.from_dict(CHECK_SETTINGS), "synthetic")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _train_in(folder: Path, spec: TrainSpec, device: str, stop_after: int | None = None) -> Path:
    paths = TrainPaths(folder / "model.pt", folder / "ckpt.pt")
    if stop_after is not None:
        calls = iter(range(10**9))
        train(spec, paths, device=device, progress=False,
              should_stop=lambda: next(calls) >= stop_after - 1)
    result = train(spec, paths, device=device, progress=False)
    if not result.finished:
        raise RuntimeError(f"{spec.method.value}: training did not finish")
    return paths.model


def check_resume(device: str, say: Say, report: DoctorReport) -> None:
    """Straight vs stopped-and-resumed training, per method: bit-identical weights."""
    with tempfile.TemporaryDirectory(prefix="drosweep-doctor-") as tmp:
        for method in Method:
            spec = _check_spec(method)
            a = _weights(_train_in(Path(tmp) / method.value / "straight", spec, device))
            b = _weights(_train_in(Path(tmp) / method.value / "resumed", spec, device,
                                   STOP_AFTER))
            same = all(torch.equal(a[k], b[k]) for k in a)
            say(f"  resume {method.value:<11} {'bit-identical' if same else 'DIFFERENT'}")
            if not same:
                report.failures.append(f"{method.value}: a resumed run differs from a straight "
                                       f"one on {device}")


def check_cpu_vs_cuda(say: Say, report: DoctorReport) -> None:
    """Same seeds on both devices: identical samples, weights equal to float rounding."""
    keys = [rng.stream_key(s, rng.Purpose.BALL, 0) for s in (1, 2, 3)]
    draws = [rng.uniform(rng.keys_tensor(keys, dev), [(0, 100), (0, 4096)], [100, 4096], 8)
             .cpu() for dev in ("cpu", "cuda")]
    same = torch.equal(draws[0], draws[1])
    say(f"  samples cpu vs cuda {'bit-identical' if same else 'DIFFERENT'} "
        f"({draws[0].numel():,} draws)")
    if not same:
        report.failures.append("the counter generator draws different numbers on CPU and CUDA")
    with tempfile.TemporaryDirectory(prefix="drosweep-doctor-") as tmp:
        for method in Method:
            spec = _check_spec(method)
            a = _weights(_train_in(Path(tmp) / method.value / "cpu", spec, "cpu"))
            b = _weights(_train_in(Path(tmp) / method.value / "cuda", spec, "cuda"))
            rel = max(float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-30))
                      for k in a)
            verdict = "ok" if rel <= CROSS_DEVICE_TOL else "TOO FAR"
            say(f"  weights cpu vs cuda {method.value:<11} max rel diff {rel:.2e} {verdict}")
            if rel > CROSS_DEVICE_TOL:
                report.failures.append(f"{method.value}: CPU and CUDA weights differ by {rel:.2e} "
                                       f"(> {CROSS_DEVICE_TOL:g}) after the same steps")


# graphs against eager: an uneven last batch (a second graph) and a rate decay within the steps
GRAPH_SETTINGS = {**CHECK_SETTINGS, "train_subset": 250, "lr_step_size": 2}


def check_graphs(say: Say, report: DoctorReport) -> None:
    """CUDA: each method trained with its static stage replayed as a CUDA graph and eagerly."""
    with tempfile.TemporaryDirectory(prefix="drosweep-doctor-") as tmp:
        for method in Method:
            if method_parts(method).stage(StepContext(_check_spec(method), 0, 10**6, 1.0,
                                                      [0])) is None:
                say(f"  graphs {method.value:<11} no static stage (runs eagerly)")
                continue
            runs = []
            for graphs in (True, False):
                settings = TrainSettings.from_dict({**GRAPH_SETTINGS, "cuda_graphs": graphs})
                spec = TrainSpec(method, _check_spec(method).radius, 5, settings, "synthetic")
                runs.append(_weights(_train_in(Path(tmp) / method.value / str(graphs), spec,
                                               "cuda")))
            same = all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
            say(f"  graphs {method.value:<11} replayed vs eager "
                f"{'bit-identical' if same else 'DIFFERENT'}")
            if not same:
                report.failures.append(f"{method.value}: CUDA graph replays differ from eager "
                                       f"steps (set cuda_graphs = false to train without them)")


def check_stage_waits(device: torch.device, say: Say, report: DoctorReport) -> None:
    """Each static stage once, on a small pack, watched for host waits."""
    for method in Method:
        spec = _check_spec(method)
        ctx = StepContext(spec, 0, 10**6, 1.0, [1, 2], step_keys([1, 2], 0, device))
        stage = method_parts(method).stage(ctx)
        if stage is None:
            continue
        models = [build_model(spec.settings.hidden, seed=s) for s in (1, 2)]
        model = PackedMLP(models).to(device)
        data = make_synthetic(n_train=2 * BATCH, n_test=1)
        x = data.x_train.view(2, BATCH, -1).to(device)
        y = data.y_train.view(2, BATCH).to(device)
        static = ctx.static(device)
        problem = ""
        with record_waits() as waits:
            try:
                if device.type == "cuda":
                    with warnings.catch_warnings():  # "a prototype feature": said in the doc
                        warnings.simplefilter("ignore", UserWarning)
                        torch.cuda.set_sync_debug_mode("error")
                set_relu_draws(model, static)
                stage.run(model, x, y, static)
            except RuntimeError as exc:
                problem = str(exc).splitlines()[0]
            finally:
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
        calls = sorted({f"{name} ({where})" for name, where in waits.on_cuda()})
        if problem or calls:
            what = problem or ", ".join(calls)
            say(f"  host waits {stage.name:<20} FOUND: {what}")
            report.failures.append(f"{stage.name}: the static stage waits on the host: {what}")
        else:
            say(f"  host waits {stage.name:<20} none")


def check_fused(device: torch.device, say: Say, report: DoctorReport) -> None:
    """The fused robust pass against the chunked fp32 pass, per precision, on one batch of a
    model whose CE spreads over the ball (as a trained one): the kernel's samples bit-identical,
    every sample within its certificate on the device's own tensor cores, the fp32 path's kept
    samples all kept or recomputed, loss and gradient within fp32 rounding."""
    reason = fused_ce.availability(device)
    if reason is not None:
        report.skipped.append(f"fused robust kernel ({reason})")
        return
    torch.manual_seed(0)
    data = make_synthetic(n_train=FUSED_BATCH, n_test=1)
    model = build_model(seed=1).to(device)
    with torch.no_grad():  # layer 2 the identity: the CE spreads over the ball
        model.layer2.weight.copy_(torch.eye(model.layer2.weight.shape[0]))
        model.layer2.bias.fill_(0.01)
    x, y = data.x_train.to(device), data.y_train.to(device)
    for precision in Precision:
        try:
            c = compare_fused(model, x, y, FUSED_KEY, FUSED_RADIUS, FUSED_N, 1e-4, precision)
        except RuntimeError as exc:  # a compile or launch error of the kernel
            what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            say(f"  fused {precision.value:<7} FAILED to run: {what}")
            report.failures.append(f"fused {precision.value}: {what}")
            continue
        verdict = "ok" if c.ok else "FAILED"
        say(f"  fused {precision.value:<7} samples {'bit-identical' if c.samples_identical else 'DIFFER'}"
            f", |dCE| max {c.ce_max_abs_diff:.1e}, bound violations {c.bound_violations}, kept "
            f"{c.kept:,} (missing {c.kept_missing}), candidates {c.candidates:,}/{c.samples:,}, "
            f"loss {c.loss_rel_diff:.1e}, grad {c.grad_rel_diff:.1e} {verdict}")
        if not c.ok:
            report.failures.append(f"fused {precision.value} against chunked: {c}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def _timer(device: torch.device, out: list[float]) -> Iterator[None]:
    _sync(device)
    start = time.perf_counter()
    yield
    _sync(device)
    out.append(time.perf_counter() - start)


def time_step(method: Method, radius: float, k: int, temp: float, device: torch.device,
              repeats: int, batch: int = BATCH) -> float:
    """Seconds of one optimizer step of a pack of k fresh trials, taken the way training takes
    it (`trainers.loop.PackState.run_step`: data order, keys, CUDA graph replays, the update),
    on synthetic Avila-shaped data at a constant temperature `temp`: the minimum over `repeats`,
    after two warm-up steps on CUDA (graph capture, kernel selection, allocator)."""
    settings = TrainSettings.from_dict({**TIMING_OVERRIDES, "temp_start": temp,
                                        "temp_end": temp, "adv_start_epoch": 0})
    warmup = 2 if device.type == "cuda" else 0
    data = make_synthetic(n_train=batch * (repeats + warmup + 1), n_test=1)
    specs = [TrainSpec(method, radius, derive_seed(i, "doctor"), settings, "synthetic")
             for i in range(k)]
    paths = [TrainPaths(Path(os.devnull), Path(os.devnull)) for _ in specs]
    pack = PackState(specs, paths, [data] * k, device, FP32)
    for _ in range(warmup):
        pack.run_step()
    times: list[float] = []
    for _ in range(repeats):
        with _timer(device, times):
            pack.run_step()
    return min(times)


def time_rates(device: torch.device, quick: bool, say: Say, report: DoctorReport) -> None:
    cpu = device.type == "cpu"
    repeats = 1 if cpu else 3
    for eps in ROBUST_EPS:
        if quick and eps > QUICK_EPS:
            report.skipped.append(f"robust eps={eps:g} timings (--quick)")
            continue
        seconds = {}
        for temp in TEMPERATURES:
            seconds[temp] = time_step(Method.ROBUST, eps, 1, temp, device, repeats, BATCH)
        say(f"  robust eps={eps:<5g} T=1 {seconds[1.0]:8.3f} s   T=1e-4 {seconds[1e-4]:8.3f} s")
        report.rates.append(Rate(Method.ROBUST, eps, 1, seconds[1e-4],
                                 f"T=1e-4 (most of a run); T=1: {seconds[1.0]:.4g} s; "
                                 f"B={BATCH}, fresh model"))
    for method in PACKED_METHODS:
        radius = 0.0 if method is Method.REGULAR else PACKED_RADIUS
        for k in PACKS:
            if quick and k > QUICK_PACK[method]:
                report.skipped.append(f"{method.value} k={k} timing (--quick)")
                continue
            sec = time_step(method, radius, k, 1e-4, device, repeats if k < 51 else 1, BATCH)
            say(f"  {method.value:<11} k={k:<3} {sec:8.4f} s/step  ({sec / k * 1e3:.2f} ms per "
                f"trial)")
            report.rates.append(Rate(method, radius, k, sec, f"B={BATCH}, fresh models"))


def _versions(device: torch.device) -> dict[str, str]:
    out = {"torch": str(torch.__version__), "python": platform.python_version()}
    if device.type == "cuda":
        out["cuda"] = str(torch.version.cuda)
    return out


def run_doctor(*, out: Path, quick: bool = False, device: str = "auto",
               say: Say = print) -> DoctorReport:
    """Check this machine's device and write its calibration to `out`; see the module doc."""
    dev = resolve_device(device)
    precision = pin_precision()
    report = DoctorReport(device_model(dev))
    say(f"device        {dev} - {report.device}")
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        say(f"SMs           {props.multi_processor_count} ({props.total_memory / 2**30:.0f} GiB)")
    else:
        say(f"threads       {torch.get_num_threads()} (no SMs: CPU)")
        if not torch.cuda.is_available():
            report.skipped.append("every CUDA check and timing (no CUDA device here)")
    say(f"precision     {precision}: " + ", ".join(f"{k}={v}" for k, v in
                                                    precision_flags().items()
                                                    if k != TF32_OVERRIDE_ENV))
    say(f"{TF32_OVERRIDE_ENV} = {precision_flags()[TF32_OVERRIDE_ENV]!r}")
    say(f"stop and resume ({dev.type}):")
    check_resume(dev.type, say, report)
    say(f"static stages of the steps ({dev.type}):")
    check_stage_waits(dev, say, report)
    if dev.type == "cuda":
        say("CPU against CUDA, same seeds:")
        check_cpu_vs_cuda(say, report)
        say("CUDA graphs against eager steps, same seeds:")
        check_graphs(say, report)
        say("fused robust kernel against the chunked fp32 pass (eps 1, T=1e-4):")
        check_fused(dev, say, report)
    elif torch.cuda.is_available():
        report.skipped.append("CPU against CUDA (device cpu was asked for)")
        report.skipped.append("CUDA graph replays against eager steps (device cpu was asked "
                              "for)")
    else:
        report.skipped.append("CUDA graph replays against eager steps (no CUDA device here)")
    if dev.type != "cuda":
        report.skipped.append("fused robust kernel against the chunked pass (runs on CUDA)")
    say(f"timings ({dev.type}, seconds per optimizer step of the pack):")
    time_rates(dev, quick, say, report)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    calibration.save(out, report.device, report.rates, created=created,
                     versions=_versions(dev))
    report.calibration_path = out
    say(f"calibration   {len(report.rates)} rates written to {out}")
    for line in report.skipped:
        say(f"skipped       {line}")
    for line in report.failures:
        say(f"FAILED        {line}")
    if not math.isfinite(sum(r.seconds_per_step for r in report.rates)):
        report.failures.append("a timing is not finite")
    return report


__all__ = ["DoctorReport", "run_doctor", "time_step"]
