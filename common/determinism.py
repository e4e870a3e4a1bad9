"""Thread settings that must not follow the machine's load, set where a process starts.

With dynamic threads an OpenMP runtime or MKL may hand a parallel region fewer threads than asked
when the cores are busy (libgomp's OMP_DYNAMIC sizes teams by the load average; MKL_DYNAMIC,
MKL's default, lets it pick), and a reduction split over another number of threads rounds
differently: a trial trained on a busy machine would not be bit-identical to the same trial on
an idle one, nor to its own resumed run. Both are read when the libraries load, so they are set
before torch is imported (the CLI, a cluster task); `trainers.device.pin_threads` turns MKL's off
again in a process that imported torch first.
"""

from __future__ import annotations

import os

FIXED_THREADS_ENV = {"OMP_DYNAMIC": "FALSE", "MKL_DYNAMIC": "FALSE"}


def pin_thread_env() -> None:
    """Fixed thread counts for the libraries this process (and its children) load from now on."""
    os.environ.update(FIXED_THREADS_ENV)


__all__ = ["FIXED_THREADS_ENV", "pin_thread_env"]
