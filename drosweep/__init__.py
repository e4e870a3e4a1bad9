"""drosweep: the smoothed robust pointwise training study, planned, run and reduced on SLURM."""

__version__ = "0.1.0"
