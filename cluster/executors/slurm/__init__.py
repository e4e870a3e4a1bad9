"""SLURM, all of it: submitting job arrays (executor.py), reading the cluster (info.py), the jobs'
states (sacct.py), cancelling them (scancel.py) and the sbatch options a study may not set
(sbatch.py)."""

from cluster.executors.slurm.executor import SlurmExecutor

__all__ = ["SlurmExecutor"]
