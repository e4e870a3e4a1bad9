"""The shared trainer: data, model, the four training methods, checkpoints and the one loop.

It imports no other package of drosweep, so a trial can be trained (and debugged) on its own.
"""

from trainers.spec import Method, TempSchedule, TrainSettings, TrainSpec, n_ball_samples

__all__ = ["Method", "TempSchedule", "TrainSettings", "TrainSpec", "n_ball_samples"]
