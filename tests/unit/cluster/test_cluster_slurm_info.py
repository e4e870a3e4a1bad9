"""Reading the cluster from scontrol output (recorded from the local cluster, and a typed GPU
cluster written as scontrol prints it) and checking a profile against it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from cluster.errors import ClusterError
from cluster.executors.slurm import info as slurm_info
from cluster.plan_context import context
from jobs import parse_study
from jobs.study import ClusterProfile
from studies import study_text, write_study

StubCommand = Callable[[str, str], Path]  # the `stub_command` fixture (conftest.py)

DATA = Path(__file__).resolve().parents[2] / "data" / "slurm"

# `scontrol -o show partition` / `show node` of a cluster with typed GPUs (fields trimmed)
PARTITIONS = (
    "PartitionName=gpu AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=1-00:00:00 "
    "Nodes=g[01-02],h01 State=UP TotalCPUs=160 TRES=cpu=160,gres/gpu=16\n"
    "PartitionName=h100 AllowGroups=ALL Default=NO MaxTime=12:00:00 Nodes=h01 State=UP\n"
    "PartitionName=cpu AllowGroups=ALL Default=NO MaxTime=30 Nodes=c01 State=UP\n")
NODES = (
    "NodeName=g01 Arch=x86_64 CPUTot=64 Gres=gpu:a100:4(S:0-1) RealMemory=512000 "
    "OS=Linux 5.14 #1 SMP Partitions=gpu State=IDLE\n"
    "NodeName=g02 Arch=x86_64 CPUTot=64 Gres=gpu:a100:4(S:0-1) RealMemory=512000 "
    "Partitions=gpu State=MIXED\n"
    "NodeName=h01 Arch=x86_64 CPUTot=96 Gres=gpu:h100:8(S:0-1),shard:h100:32 "
    "RealMemory=1024000 Partitions=gpu,h100 State=IDLE\n"
    "NodeName=c01 Arch=x86_64 CPUTot=128 Gres=(null) RealMemory=256000 Partitions=cpu "
    "State=IDLE\n")
CONFIG = "Configuration data as of 2026-11-25T23:00:00\nMaxArraySize            = 5001\n"


def runner(config: str = CONFIG, partitions: str = PARTITIONS, nodes: str = NODES
           ) -> slurm_info.Runner:
    def run(args: Sequence[str]) -> str | None:
        return {"config": config, "partition": partitions, "node": nodes}[args[-1]]
    return run


def typed() -> slurm_info.SlurmInfo:
    info = slurm_info.read(runner())
    assert info is not None
    return info


def local() -> slurm_info.SlurmInfo:
    info = slurm_info.read(runner(*(
        (DATA / f"local_{name}.txt").read_text() for name in ("config", "partition", "node"))))
    assert info is not None
    return info


def test_recorded_local_cluster() -> None:
    info = local()
    assert info.max_array_size == 10001
    assert sorted(info.partitions) == ["debug", "urgent"]
    assert info.partition(None) == info.partitions["debug"]  # the default one
    assert info.partitions["debug"].max_time_min is None     # UNLIMITED
    (node,) = info.nodes
    assert (node.name, node.cpus, node.mem_mb, node.partitions) == (
        "vm", 2, 21694, ("debug", "urgent"))
    assert node.gpus == (slurm_info.Gpus(None, 2),)
    assert info.gpu_types("debug") == ()


def test_typed_cluster() -> None:
    info = typed()
    assert info.max_array_size == 5001
    assert info.partitions["gpu"].max_time_min == 1440
    assert info.partitions["h100"].max_time_min == 720
    assert info.partitions["cpu"].max_time_min == 30
    assert [n.name for n in info.nodes_of("gpu")] == ["g01", "g02", "h01"]
    assert info.nodes[2].gpus == (slurm_info.Gpus("h100", 8),)  # shards are not GPUs
    assert info.nodes[3].gpus == ()
    assert info.gpu_types("gpu") == ("a100", "h100") and info.gpu_types("h100") == ("h100",)


@pytest.mark.parametrize(("text", "minutes"), [
    ("UNLIMITED", None), ("INFINITE", None), ("30", 30), ("30:00", 30), ("30:01", 31),
    ("12:00:00", 720), ("1-00:00:00", 1440), ("2-12", 3600), ("1-00:30", 1470), ("bogus", None)])
def test_time_format(text: str, minutes: int | None) -> None:
    assert slurm_info.parse_time_min(text) == minutes


@pytest.mark.parametrize(("gres", "gpus"), [
    ("gpu:2", [(None, 2)]), ("gpu:2(S:0)", [(None, 2)]), ("gpu:a100:4(S:0-1)", [("a100", 4)]),
    ("gpu:a100:4(S:0-1),gpu:v100:2(S:1)", [("a100", 4), ("v100", 2)]),
    ("shard:8,gpu:nvidia_h100_80gb_hbm3:8", [("nvidia_h100_80gb_hbm3", 8)]), ("mps:100", [])])
def test_gres(gres: str, gpus: list[tuple[str | None, int]]) -> None:
    assert [(g.type, g.count) for g in slurm_info.parse_gres(gres)] == gpus


def profile(**kw: object) -> ClusterProfile:
    base = {"partition": "gpu", "gpus_per_node": 8, "cpus_per_task": 4, "mem_gb": 32.0,
            "time_limit_min": 720}
    base.update(kw)
    return ClusterProfile(**base)  # type: ignore[arg-type]


def test_a_profile_the_cluster_can_run_has_no_problems() -> None:
    for p in (profile(), profile(gpu_type="h100", gpus_per_task=8),
              profile(partition="h100", gpu_type="h100"), profile(partition=None),
              profile(partition="cpu", gpus_per_task=0, time_limit_min=30)):
        assert slurm_info.problems(p, typed()) == [], p
    slurm_info.check(profile(partition="nope"), None)  # nothing known: nothing refused


@pytest.mark.parametrize(("kw", "line"), [
    ({"partition": "gpus"}, "cluster.partition = 'gpus': no such partition on this cluster; "
                            "choose one of cpu, gpu, h100"),
    ({"time_limit_min": 1441}, "cluster.time_limit_min = 1441 exceeds the 1440 min MaxTime of "
                               "partition 'gpu'; set it to 1440 or less"),
    ({"partition": "h100", "time_limit_min": 1440}, "MaxTime of partition 'h100'; set it to 720"),
    ({"cpus_per_task": 97}, "cluster.cpus_per_task = 97 but the nodes of partition 'gpu' have "
                            "at most 96 CPUs; set it to 96 or less"),
    ({"mem_gb": 2000.0}, "cluster.mem_gb = 2000 but the nodes of partition 'gpu' have at most"),
    ({"gpu_type": "v100"}, "no node of partition 'gpu' has 1 GPU(s) of gres type 'v100' (they "
                           "have: gpu:a100:4, gpu:h100:8)"),
    ({"gpu_type": "a100", "gpus_per_task": 8}, "has 8 GPU(s) of gres type 'a100'"),
    ({"partition": "cpu", "time_limit_min": 30}, "no node of partition 'cpu' has 1 GPU(s) "
                                                 "(they have: no GPUs)"),
])
def test_problems_are_one_line_naming_the_setting(kw: dict[str, object], line: str) -> None:
    found = slurm_info.problems(profile(**kw), typed())
    assert len(found) == 1 and line in found[0] and "\n" not in found[0]
    with pytest.raises(ClusterError, match=r"^cluster\."):
        slurm_info.check(profile(**kw), typed())


def test_no_default_partition() -> None:
    info = slurm_info.read(runner(partitions=PARTITIONS.replace("Default=YES", "Default=NO")))
    assert info is not None
    assert "no default partition: set cluster.partition" in slurm_info.problems(
        profile(partition=None), info)[0]


def test_unanswered_scontrol_means_nothing_known() -> None:
    def silent(args: Sequence[str]) -> str | None:
        return None if args[-1] == "node" else ""
    assert slurm_info.read(silent) is None


def test_gres_model() -> None:
    info = typed()
    assert slurm_info.gres_model(profile(partition="h100"), info) == "h100"  # the only type
    assert slurm_info.gres_model(profile(), info) is None                     # mixed
    assert slurm_info.gres_model(profile(gpu_type="a100"), info) == "a100"     # asked for
    assert slurm_info.gres_model(profile(partition="h100", gpus_per_task=0), info) is None
    assert slurm_info.gres_model(profile(partition="debug"), local()) is None  # untyped


H100: dict[str, Any] = {"trials": 2, "cluster": {"partition": "h100", "gpus_per_node": 8}}


def test_context_takes_max_array_size_from_the_cluster(tmp_path: Path) -> None:
    study = parse_study(study_text(tmp_path, **H100), Path("s.toml"))
    ctx = context(study, info=typed())
    assert study.cluster.max_array_size is None and ctx.profile.max_array_size == 5001
    assert ctx.rates.device_model == "h100" and ctx.problems == ()
    given = parse_study(study_text(tmp_path, **{**H100, "cluster": {
        **H100["cluster"], "max_array_size": 100}}), Path("s.toml"))
    assert context(given, info=typed()).profile.max_array_size == 100
    assert context(given).profile.array_size_cap == 100
    assert context(study).profile.array_size_cap == 1001  # nothing known: SLURM's default
    long = parse_study(study_text(tmp_path, **{**H100, "cluster": {
        **H100["cluster"], "time_limit_min": 721}}), Path("s.toml"))
    assert "MaxTime of partition 'h100'" in context(long, info=typed()).problems[0]
    named = dataclasses.replace(study, cluster=dataclasses.replace(
        study.cluster, device_model="NVIDIA H100 80GB HBM3"))
    assert context(named, info=typed()).rates.device_model == "NVIDIA H100 80GB HBM3"
    # a local or debug run runs here, whatever the profile names
    assert "thread" in str(context(named, "debug", device="cpu").rates.device_model)


def test_read_stops_at_the_first_unanswered_call() -> None:
    calls: list[Sequence[str]] = []

    def down(args: Sequence[str]) -> str | None:
        calls.append(args)
        return None
    assert slurm_info.read(down) is None and len(calls) == 1


def test_an_unreachable_controller_costs_one_short_wait(
        stub_command: StubCommand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`plan` with an scontrol that hangs: one call, cut at TIMEOUT_S; the next read in the
    same process does not run scontrol at all."""
    from drosweep.cli import main

    log = tmp_path / "calls"
    stub_command("scontrol", f'echo "$*" >> "{log}"; exec sleep 30')
    monkeypatch.setattr(slurm_info, "TIMEOUT_S", 0.5)
    study = write_study(tmp_path, file="s.toml", trials=2)
    start = time.monotonic()
    assert main(["plan", str(study)]) == 0
    assert slurm_info.read() is None
    assert log.read_text().splitlines() == ["show config"]
    assert time.monotonic() - start < 10  # one 0.5 s wait, not three (or 3 x 15 s before)
    capsys.readouterr()


def test_scontrol_is_asked_again_once_it_answers(stub_command: StubCommand,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stub_command("scontrol", "exit 1")
    assert slurm_info.run_scontrol(["show", "config"]) is None
    stub_command("scontrol", "echo MaxArraySize = 7")
    assert slurm_info.run_scontrol(["show", "config"]) is None  # within the hold
    monkeypatch.setattr(slurm_info, "UNANSWERED_HOLD_S", 0.0)
    assert slurm_info.run_scontrol(["show", "config"]) == "MaxArraySize = 7\n"
