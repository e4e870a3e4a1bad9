"""Everything a submission is checked against before the first byte is written or sbatch runs.

A mistake the cluster would find hours later — a truncated data file, a trial that cannot fit the
task's memory, an `sbatch_extra` that silently overrides what drosweep relies on (the executor's
`check_settings`) — is a one-line error here instead (`check_submission`). The grid's size,
each radius's N(eps) and the study root's characters are checked earlier, when the study file is
read.
"""

from __future__ import annotations

import os

from cluster.cost import CONTEXT_BYTES, chunk_setting, estimate
from cluster.errors import ClusterError
from cluster.executors.base import Executor
from jobs.axes import value_tag
from jobs.errors import StudyError
from jobs.grid import Axes, group_label, settings_for, sweep_combinations
from jobs.study import Study
from trainers.datasets import DataError, get_source
from trainers.spec import Method, SpecError, TrainSpec


def check_memory(study: Study) -> None:
    """Each (method, radius) group's trial, with each combination of swept values, must fit the
    task's GPU and host memory."""
    seen: set[tuple[Method, float]] = set()
    for method in study.methods:
        for radius in (0.0,) if method is Method.REGULAR and not study.regular_per_radius \
                else study.radii:
            if (method, radius) in seen:
                continue
            seen.add((method, radius))
            for axes in sweep_combinations(study):
                _check_trial_memory(study, method, radius, axes)


def _check_trial_memory(study: Study, method: Method, radius: float, axes: Axes) -> None:
    """One group's trial, with the settings of one combination of swept values (a swept
    `hidden` changes the memory)."""
    p = study.cluster
    spec = TrainSpec(method=method, radius=radius, seed=0,
                     settings=settings_for(study, axes), dataset=study.dataset,
                     data_options=study.data_options)
    label = group_label(method, radius) + "".join(f" {k}={value_tag(v)}"
                                                  for k, v in axes)
    try:
        spec.validate()
    except SpecError as exc:
        raise StudyError(f"{study.source}: {label}: {exc}") from None
    cost = estimate(spec, p)
    gpu = p.gpus_per_task > 0
    if gpu and cost.peak_mem_bytes > p.gpu_mem_gb * 1e9:
        raise ClusterError(f"{label}: one trial needs ~{cost.peak_mem_bytes / 1e9:.1f} GB "
                           f"of GPU memory, more than cluster.gpu_mem_gb = "
                           f"{p.gpu_mem_gb:g}; lower {chunk_setting(p)} or "
                           f"training.hidden")
    host = CONTEXT_BYTES if gpu else cost.peak_mem_bytes
    if host > p.mem_gb * 1e9:
        where = "" if gpu else " (CPU tasks hold the working memory in host memory)"
        raise ClusterError(f"{label}: one trial needs ~{host / 1e9:.1f} GB of host memory"
                           f"{where}, more than cluster.mem_gb = {p.mem_gb:g}; raise "
                           f"cluster.mem_gb or lower {chunk_setting(p)}")


def data_problem(study: Study, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """Why the study's data is not there (one line), or None; reads no file (for `plan`)."""
    problem = get_source(study.dataset).missing(study.data_options, data_dir or study.data_dir)
    return None if problem is None else f"{study.source}: {problem}"


def check_data(study: Study, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """Find, read and verify the data set the tasks will read (files, rows, columns, classes)
    through the registry; returns its folder made absolute (so every node reads the same one),
    or None for a set without fixed files. `data_dir` overrides the study's."""
    source = get_source(study.dataset)
    if source.generated:  # made from the settings in memory, checked when the study loaded
        return None
    problem = data_problem(study, data_dir)
    if problem is not None:
        raise StudyError(problem)
    folder = source.folder(data_dir or study.data_dir)
    from trainers.data import check_subset, load_dataset  # torch: only when a submission reads the data

    try:
        data = load_dataset(study.dataset, folder, options=study.data_options)
        for axes in sweep_combinations(study):  # a swept train_subset: each of its values
            check_subset(settings_for(study, axes).train_subset, len(data.y_train))
    except DataError as exc:
        raise StudyError(f"{study.source}: {exc}") from None
    return str(folder.absolute()) if folder is not None else None


def check_submission(study: Study, executor: Executor) -> str | None:
    """Every check of a submission that needs no scheduler call; raises on the first problem.
    Returns the data folder the tasks read (see `check_data`)."""
    executor.check_settings()
    folder = check_data(study)
    check_memory(study)
    return folder
