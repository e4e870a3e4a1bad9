"""`drosweep train`: one trial on this machine, resumable, the paper's defaults."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.atomic import unwritable_reason
from drosweep.args import study_from_args
from drosweep.errors import UsageError
from drosweep.render import format_train_estimate
from jobs.grid import TrialSpec, expand
from jobs.paths import Paths
from jobs.study import ClusterProfile
from trainers.datasets import get_source, names
from trainers.spec import ROBUST_KERNELS, ROBUST_PRECISIONS, Method, TrainSettings, TrainSpec
from trainers.stop import stop_on_signals

if TYPE_CHECKING:
    from cluster.rates import TrialEstimate


def model_filename(radius: float, trial_id: int) -> str:
    """The original code's name: the radius as Python's `str(float)` (`eps_1.0_trial_0.pt`)."""
    return f"eps_{float(radius)}_trial_{trial_id}.pt"


# flags that describe the trial itself: a study's trial takes them from the study (and --set)
SPEC_FLAGS = {"method": "-t", "radius": "-r", "id": "-i", "epochs": "--epochs",
              "max_steps": "--max-steps", "batch_size": "--batch-size", "seed": "--seed",
              "dataset": "--dataset", "checkpoint_every": "--checkpoint-every",
              "train_subset": "--train-subset", "robust_kernel": "--robust-kernel",
              "robust_precision": "--robust-precision", "no_cuda_graphs": "--no-cuda-graphs"}


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train one trial locally (CPU or CUDA), resuming if possible",
                       description="Train one trial: a trial of a study (STUDY KEY: its seed and "
                                   "settings, the same weights as its task) or one given by "
                                   "-t/-r/-i. Prints the planner's time estimate first; "
                                   "re-running the same command resumes it.")
    p.add_argument("study", nargs="?", default=None, help="study file (TOML), with KEY")
    p.add_argument("key", nargs="?", default=None,
                   help="trial key of the study, e.g. robust/eps_0.1/trial_3")
    p.add_argument("--root", default=None, help="study root (default: the `root` of the study "
                                                "file; its finished trials inform the estimate)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a setting of the study file, e.g. training.epochs=10 "
                        "(repeatable; validated like the file)")
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="measured rates for the estimate (default: a study's "
                        "cluster.calibration, else the shipped file for this device)")
    p.add_argument("-t", "--method", default=None,
                   metavar="{" + ",".join(m.value for m in Method) + "}", help="training method")
    p.add_argument("-r", "--radius", default=None, type=float, help="L-inf radius epsilon")
    p.add_argument("-d", "--device", default=None,
                   help="cpu, cuda or auto (default: cpu; a study's trial: cluster.device)")
    p.add_argument("-s", "--save-folder", required=True, type=Path, help="folder for model and checkpoints")
    p.add_argument("-i", "--id", default=None, type=int, help="trial id (names the files)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"default: {TrainSettings.epochs}")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many optimizer steps in total, counted across resumes")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"default: {TrainSettings.batch_size}")
    p.add_argument("--seed", type=int, default=None, help="default: the trial id")
    p.add_argument("--data-dir", default=None,
                   help="data folder (default: a study's data_dir, else $DROSWEEP_DATA_DIR, "
                        "else the user cache)")
    p.add_argument("--dataset", default=None, choices=[n for n in names() if
                                                      not get_source(n).options_required],
                   help="a data set without settings (default: avila; a study's [data] gives "
                        "the others)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help=f"checkpoint every this many optimizer steps "
                        f"(default: {TrainSettings.checkpoint_every})")
    p.add_argument("--train-subset", type=int, default=None, help="train on this many rows only")
    p.add_argument("--robust-kernel", choices=ROBUST_KERNELS, default=None,
                   help="robust step's pass 1: chunked torch, one fused kernel (CUDA), or auto "
                        "(default: auto)")
    p.add_argument("--robust-precision", choices=ROBUST_PRECISIONS, default=None,
                   help="the fused kernel's products: ieee (fp32), tf32x3 or bf16x3 (tensor "
                        "cores, certified against fp32; default: ieee)")
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help="run every step eagerly (default on CUDA: static stages as CUDA graphs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Trial:
    """What `run` trains: the spec, the id that names its files, and where and how it runs."""

    spec: TrainSpec
    trial_id: int
    device: str
    threads: int | None            # torch's CPU threads (a study's cpus_per_task, as its task)
    data_dir: str | None
    profile: ClusterProfile        # the cost model's device (the study's, else the defaults)
    paths: Paths | None            # a study's root: its finished trials inform the estimate
    mates: tuple[TrialSpec, ...] = ()  # the study's trials (whose markers are read)
    calibration: str | None = None     # --calibration, else the study's


def _trial_from_args(args: argparse.Namespace) -> Trial:
    if args.study is None:
        return _flags_trial(args)
    if args.key is None:
        raise UsageError(f"which trial of {args.study}? give its key, e.g. "
                         f"`drosweep train {args.study} robust/eps_0.1/trial_0 -s DIR`")
    given = [flag for dest, flag in SPEC_FLAGS.items() if getattr(args, dest) not in (None, False)]
    if given:
        raise UsageError(f"{given[0]}: a study's trial takes its method, radius, seed and "
                         f"settings from the study; change a setting with --set "
                         f"(e.g. --set training.epochs=10)")
    from cluster.checks import check_data
    from cluster.select import make_selection

    study = study_from_args(args)
    specs = expand(study)
    trial = make_selection(study, keys=[args.key], specs=specs).pick(specs)[0]
    trial.train_spec.validate()
    data_dir = check_data(study, args.data_dir)
    return Trial(trial.train_spec, trial.trial, args.device or study.cluster.device,
                 study.cluster.cpus_per_task, data_dir, study.cluster, Paths(study.root),
                 tuple(specs), args.calibration or study.cluster.calibration)


def _flags_trial(args: argparse.Namespace) -> Trial:
    if args.key is not None:
        raise UsageError(f"unexpected argument {args.key!r}: a trial key follows a study file")
    missing = [flag for dest, flag in (("method", "-t/--method"), ("radius", "-r/--radius"),
                                       ("id", "-i/--id")) if getattr(args, dest) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)} "
                         f"(or give a study file and a trial key)")
    device = args.device or "cpu"
    return Trial(_spec_from_args(args), args.id, device, None, args.data_dir,
                 ClusterProfile(device=device), None, calibration=args.calibration)


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
    given = {name: getattr(args, name) for name in ("epochs", "batch_size", "checkpoint_every",
                                                    "robust_kernel", "robust_precision")}
    settings = TrainSettings(**{k: v for k, v in given.items() if v is not None},
                             max_steps=args.max_steps, train_subset=args.train_subset,
                             cuda_graphs=not args.no_cuda_graphs)
    spec = TrainSpec(method=method, radius=args.radius,
                     seed=args.id if args.seed is None else args.seed,
                     settings=settings, dataset=args.dataset or "avila")
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


def _estimate(trial: Trial) -> TrialEstimate:
    """The planner's estimate of this trial trained alone, for this machine's device model."""
    from cluster.executors.blocking import local_device_model
    from cluster.rates import rate_book, trial_estimate

    model = local_device_model(trial.device, trial.threads)
    book = rate_book(trial.paths, trial.mates, model, trial.calibration)
    return trial_estimate(trial.spec, trial.profile, book)


def run(args: argparse.Namespace) -> int:
    trial = _trial_from_args(args)
    spec = trial.spec
    _check_kernel(spec, trial.device)
    _check_folder(args.save_folder)
    name = model_filename(spec.radius, trial.trial_id)
    from trainers.device import cpu_threads
    from trainers.loop import TrainPaths, train  # torch only when training

    print(format_train_estimate(_estimate(trial)), flush=True)
    paths = TrainPaths(model=args.save_folder / name,
                       checkpoint=args.save_folder / (name[:-3] + ".ckpt"))
    stop = threading.Event()

    def on_signal(sig: signal.Signals) -> None:
        stop.set()
        print(f"\nsignal {sig.name}: checkpointing after this step")

    with stop_on_signals(on_signal, (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)), \
            cpu_threads(trial.threads):
        result = train(spec, paths, data_dir=trial.data_dir, device=trial.device,
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
