"""Shared fixtures. The Avila files come from $DROSWEEP_DATA_DIR, else ../shared/data/avila."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from fake_scheduler import FakeScheduler

from cluster.executors.slurm import SlurmExecutor

REPO = Path(__file__).resolve().parents[1]

# Without a GPU the fused robust kernel's tests run it under Triton's interpreter, which a
# kernel takes when it is defined: set before any test module imports trainers.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def avila_dir() -> Path | None:
    env = os.environ.get("DROSWEEP_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "avila")
    for folder in candidates:
        if (folder / "avila-tr.txt").is_file() and (folder / "avila-ts.txt").is_file():
            return folder
    return None


@pytest.fixture(scope="session")
def avila_data_dir() -> Path:
    folder = avila_dir()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("Avila data not found: set DROSWEEP_DATA_DIR (CI must not skip data tests)")
        pytest.skip("Avila data not found: set DROSWEEP_DATA_DIR or run `drosweep data fetch`")
    return folder


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Small tensors: one thread is as fast, and immune to cores shared with other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _forget_unanswered_slurm() -> Iterator[None]:
    """A SLURM command that did not answer is not asked again for a minute (the SLURM executor's
    info and sacct): each test starts without that memory, whatever the one before it saw."""
    yield
    import sys

    for name, attr in (("cluster.executors.slurm.info", "_unanswered_at"),
                       ("cluster.executors.slurm.sacct", "_unanswered_since")):
        module = sys.modules.get(name)
        if module is not None:
            setattr(module, attr, None)


StubCommand = Callable[[str, str], Path]


@pytest.fixture
def stub_command(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> StubCommand:
    """stub_command(name, shell body) puts an executable `name` first on PATH; returns its
    path. For tests that are not about SLURM but reach for its commands."""
    folder = tmp_path_factory.mktemp("bin")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")

    def make(name: str, body: str) -> Path:
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        return path

    return make


@pytest.fixture
def no_slurm_needed(stub_command: StubCommand) -> None:
    """Stand-ins for the SLURM commands that submitit and the CLI call besides sbatch: `srun`
    present (submitit's check), `sacct` knowing no job, `scontrol` not answering (nothing
    checked). Real or absent SLURM, the test sees the same."""
    stub_command("srun", "exit 0")
    stub_command("sacct", "exit 0")
    stub_command("scontrol", "exit 1")



def pytest_unconfigure(config: pytest.Config) -> None:
    """One line at the very end when SLURM tests were skipped: a green run without them has
    not tested the cluster side (in CI, and under scripts/test.sh as root, they fail instead)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = [r for r in reporter.stats.get("skipped", [])
               if "slurm" in getattr(r, "keywords", {})]
    if skipped:
        reporter.write_line(
            f"drosweep: {len(skipped)} SLURM test(s) skipped: no local SLURM cluster (start one "
            f"with `bash scripts/slurm-up.sh` as root; CI=true makes a skip a failure)",
            yellow=True, bold=True)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, no_slurm_needed: None) -> FakeScheduler:
    sched = FakeScheduler()
    monkeypatch.setattr(SlurmExecutor, "check", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "cluster_info", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "submit",
                        lambda self, packs, options=None: sched.submit(self, packs))
    return sched
