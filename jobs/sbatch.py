"""The `sbatch` options drosweep sets itself: a study may not set them in `sbatch_extra`.

Checked when the study is read, whatever the executor, so `plan` and a local run refuse what a
SLURM submission would refuse, with the setting to use instead.
"""

from __future__ import annotations

from jobs.errors import StudyError

# sbatch options drosweep sets or relies on, and the study setting that controls each instead
_OWN = "drosweep sets it for every task"
RESERVED_SBATCH = {
    "output": "the task logs go to <root>/logs (choose the root with `root` or --root)",
    "error": "the task logs go to <root>/logs (choose the root with `root` or --root)",
    "array": "cluster.max_array_size and cluster.array_parallelism",
    "chdir": _OWN,
    "wrap": _OWN,
    "job-name": "the study's `name` (jobs are named drosweep-<name>)",
    "signal": "cluster.signal_delay_s",
    "requeue": "cluster.max_requeue",
    "no-requeue": "cluster.max_requeue",
    "dependency": "chain_reduce",
    "kill-on-invalid-dep": "chain_reduce",
    "open-mode": _OWN,
    "parsable": _OWN,
    "wait": _OWN,
    "test-only": _OWN,
    "hold": _OWN,
    "time": "cluster.time_limit_min",
    "partition": "cluster.partition",
    "account": "cluster.account",
    "qos": "cluster.qos",
    "constraint": "cluster.constraint",
    "cpus-per-task": "cluster.cpus_per_task",
    "mem": "cluster.mem_gb",
    "mem-per-cpu": "cluster.mem_gb",
    "mem-per-gpu": "cluster.mem_gb",
    "gres": "cluster.gpus_per_task",
    "gpus": "cluster.gpus_per_task",
    "gpus-per-node": "cluster.gpus_per_task",
    "gpus-per-task": "cluster.gpus_per_task",
    "nodes": _OWN + " (one node per task)",
    "ntasks": _OWN + " (one process per task)",
    "ntasks-per-node": _OWN + " (one process per task)",
}


def check_sbatch_extra(extra: dict[str, str]) -> None:
    """Refuse `sbatch_extra` keys that set (or abbreviate: sbatch takes any unambiguous prefix)
    an option drosweep relies on, naming the setting to use instead."""
    for key in extra:
        option = key.replace("_", "-")
        hits = [name for name in RESERVED_SBATCH if name.startswith(option)]
        if hits:
            name = option if option in hits else hits[0]
            raise StudyError(f"cluster.sbatch_extra.{key}: --{name} is set by drosweep and must "
                             f"not be overridden; use {RESERVED_SBATCH[name]}")


__all__ = ["RESERVED_SBATCH", "check_sbatch_extra"]
