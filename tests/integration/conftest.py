"""Integration tests against a real single-node SLURM (`scripts/slurm-up.sh`, run as root).

Tests marked `slurm` need it: where it cannot be reached they are skipped with the reason (and
the run's last line says how many), except in CI (`CI=true`) and under `scripts/test.sh` run as
root (`DROSWEEP_REQUIRE_SLURM=1`), where that is a failure. Studies here are tiny (synthetic
data, a few hundred optimizer steps) so the whole suite stays within minutes on 2 cores; every
study gets a unique name so its jobs can be cancelled by name when a test ends, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slurm_helpers import Cluster, run

from jobs import Study, load_study

REPO = Path(__file__).resolve().parents[2]


def cluster_problem() -> str | None:
    """Why the local cluster cannot be used, or None when it can."""
    missing = [t for t in ("sinfo", "sbatch", "srun", "sacct", "scancel") if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} not installed"
    try:
        nodes = run(["sinfo", "-h", "-o", "%T"])
        if nodes.returncode != 0:
            return f"slurmctld not reachable ({nodes.stderr.strip() or nodes.stdout.strip()})"
        if not any(s in nodes.stdout for s in ("idle", "mix", "alloc", "completing")):
            return f"no usable node (sinfo: {nodes.stdout.strip() or 'none'})"
        partitions = run(["sinfo", "-h", "-o", "%P"]).stdout.split()
        if "urgent" not in [p.rstrip("*") for p in partitions]:
            return "no 'urgent' partition (not the cluster of scripts/slurm-up.sh)"
        acct = run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"])
        if acct.returncode != 0:
            return f"sacct does not answer (slurmdbd down?): {acct.stderr.strip()}"
    except subprocess.TimeoutExpired as exc:
        return f"{exc.cmd[0]} timed out"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> Cluster:
    problem = cluster_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI needs the local SLURM cluster: {problem}")
        if os.environ.get("DROSWEEP_REQUIRE_SLURM") == "1":  # scripts/test.sh run as root
            pytest.fail(f"the local SLURM cluster is required (DROSWEEP_REQUIRE_SLURM=1): "
                        f"{problem}")
        pytest.skip(f"no local SLURM cluster: {problem}; start one with "
                    f"`bash scripts/slurm-up.sh` (as root, Debian)")
    cpus = int(run(["sinfo", "-h", "-o", "%c"]).stdout.split()[0])
    gres = run(["sinfo", "-h", "-o", "%G"]).stdout
    gpus = int(gres.split("gpu:")[1].split("(")[0].split(",")[0]) if "gpu:" in gres else 0
    return Cluster(cpus=cpus, gpus=gpus)


@pytest.fixture(autouse=True)
def _slurm_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_cluster")


TEMPLATE = """
name = "{name}"
root = "{root}"
dataset = "synthetic"
methods = {methods}
radii = {radii}
trials = {trials}
[training]
epochs = {epochs}
{training}
[cluster]
gpus_per_node = 2
gpus_per_task = {gpus}
cpus_per_task = {cpus}
mem_gb = 1
time_limit_min = 60
signal_delay_s = 30
max_pack = {max_pack}
max_array_size = {max_array_size}
array_parallelism = 4
device = "cpu"
device_tflops = 0.02
launch_overhead_ms = 3.0
"""


@pytest.fixture
def make_study(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Study]]:
    """Write a tiny synthetic study into tmp_path; its jobs are cancelled at the end."""
    names: list[str] = []

    def make(methods: tuple[str, ...] = ("regular",), radii: tuple[float, ...] = (0.05,),
             trials: int = 2, epochs: int = 2, training: str = "", gpus: int = 0,
             cpus: int = 1, max_pack: int = 1, max_array_size: int = 1001,
             root: Path | None = None, suffix: str = "") -> Study:
        name = f"it-{request.node.name}{suffix}"[:60].replace("[", "-").replace("]", "")
        names.append(name)
        text = TEMPLATE.format(name=name, root=root or tmp_path / f"root{suffix}",
                               methods=list(methods), radii=list(radii), trials=trials,
                               epochs=epochs, training=training, gpus=gpus, cpus=cpus,
                               max_pack=max_pack, max_array_size=max_array_size)
        path = tmp_path / f"{name}.toml"
        path.write_text(text.replace("'", '"'))
        return load_study(path)

    yield make
    if shutil.which("scancel"):
        for name in names:
            run(["scancel", "--name", f"drosweep-{name}"])
            run(["scancel", "--name", f"drosweep-{name}-after"])
