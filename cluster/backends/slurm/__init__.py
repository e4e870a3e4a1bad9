"""SLURM, all of it: submitting job arrays (backend.py), reading the cluster (info.py), the jobs'
states (sacct.py), cancelling them (scancel.py) and the sbatch options a study may not set
(sbatch.py)."""

from cluster.backends.slurm.backend import SlurmBackend

__all__ = ["SlurmBackend"]
