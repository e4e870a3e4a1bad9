"""`drosweep train`: one trial on this machine, resumable, the paper's defaults."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from common.atomic import unwritable_reason
from drosweep.errors import UsageError
from trainers.datasets import get_source, names
from trainers.spec import ROBUST_KERNELS, ROBUST_PRECISIONS, Method, TrainSettings, TrainSpec
from trainers.stop import stop_on_signals


def model_filename(radius: float, trial_id: int) -> str:
    """The original code's name: the radius as Python's `str(float)` (`eps_1.0_trial_0.pt`)."""
    return f"eps_{float(radius)}_trial_{trial_id}.pt"


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train one trial locally (CPU or CUDA), resuming if possible",
                       description="Train one trial; re-running the same command resumes it.")
    p.add_argument("-t", "--method", required=True, metavar="{" + ",".join(m.value for m in Method) + "}",
                   help="training method")
    p.add_argument("-r", "--radius", required=True, type=float, help="L-inf radius epsilon")
    p.add_argument("-d", "--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("-s", "--save-folder", required=True, type=Path, help="folder for model and checkpoints")
    p.add_argument("-i", "--id", required=True, type=int, help="trial id (names the files)")
    p.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many optimizer steps in total, counted across resumes")
    p.add_argument("--batch-size", type=int, default=TrainSettings.batch_size)
    p.add_argument("--seed", type=int, default=None, help="default: the trial id")
    p.add_argument("--data-dir", default=None,
                   help="data folder (default: $DROSWEEP_DATA_DIR, else the user cache)")
    p.add_argument("--dataset", default="avila", choices=[n for n in names() if
                                                         not get_source(n).options_required],
                   help="a data set without settings (a study's [data] gives the others)")
    p.add_argument("--checkpoint-every", type=int, default=TrainSettings.checkpoint_every,
                   help="checkpoint every this many optimizer steps")
    p.add_argument("--train-subset", type=int, default=None, help="train on this many rows only")
    p.add_argument("--robust-kernel", choices=ROBUST_KERNELS, default=TrainSettings.robust_kernel,
                   help="robust step's pass 1: chunked torch, one fused kernel (CUDA), or auto "
                        "(default: auto)")
    p.add_argument("--robust-precision", choices=ROBUST_PRECISIONS,
                   default=TrainSettings.robust_precision,
                   help="the fused kernel's products: ieee (fp32), tf32x3 or bf16x3 (tensor "
                        "cores, certified against fp32; default: ieee)")
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help="run every step eagerly (default on CUDA: static stages as CUDA graphs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _spec_from_args(args: argparse.Namespace) -> TrainSpec:
    try:
        method = Method(args.method)
    except ValueError:
        raise UsageError(f"unknown method {args.method!r}; choose from "
                         f"{', '.join(m.value for m in Method)}") from None
    if not math.isfinite(args.radius) or args.radius < 0:
        raise UsageError(f"radius must be a finite number >= 0, got {args.radius}")
    if args.id < 0:
        raise UsageError(f"trial id must be >= 0, got {args.id}")
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size,
                             max_steps=args.max_steps, checkpoint_every=args.checkpoint_every,
                             train_subset=args.train_subset, robust_kernel=args.robust_kernel,
                             robust_precision=args.robust_precision,
                             cuda_graphs=not args.no_cuda_graphs)
    spec = TrainSpec(method=method, radius=args.radius,
                     seed=args.id if args.seed is None else args.seed,
                     settings=settings, dataset=args.dataset)
    spec.validate()
    return spec


def _check_folder(folder: Path) -> None:
    reason = unwritable_reason(folder)
    if reason is not None:
        raise UsageError(f"{folder}: save folder is not writable ({reason})")


def _check_kernel(spec: TrainSpec, device: str) -> None:
    """An explicit fused robust kernel that cannot run on this device: one line, before any
    file is written (auto always can: it means the chunked pass where the fused one cannot)."""
    if spec.method is not Method.ROBUST or spec.settings.robust_kernel != "fused":
        return
    from trainers.device import resolve_device
    from trainers.kernels.fused_ce import availability

    reason = availability(resolve_device(device))
    if reason is not None:
        raise UsageError(reason)


def run(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)
    _check_kernel(spec, args.device)
    _check_folder(args.save_folder)
    name = model_filename(spec.radius, args.id)
    from trainers.loop import TrainPaths, train  # torch only when training

    paths = TrainPaths(model=args.save_folder / name,
                       checkpoint=args.save_folder / (name[:-3] + ".ckpt"))
    stop = threading.Event()

    def on_signal(sig: signal.Signals) -> None:
        stop.set()
        print(f"\nsignal {sig.name}: checkpointing after this step")

    with stop_on_signals(on_signal, (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)):
        result = train(spec, paths, data_dir=args.data_dir, device=args.device,
                       progress=not args.no_progress, should_stop=stop.is_set)
    if not result.finished:
        print(f"stopped at step {result.steps}; checkpoint {paths.checkpoint} "
              f"(re-run the same command to resume)")
        return 143
    print(f"model {paths.model} (sha256 {result.model_sha256}); {result.steps} steps, "
          f"{result.epochs} epochs, {result.wall_s:.1f}s, final loss {result.final_loss:.4f}")
    if not math.isfinite(result.final_loss):
        print(f"drosweep: training diverged (final loss {result.final_loss}): the model is no "
              f"result; lower the learning rate", file=sys.stderr)
        return 1
    return 0
