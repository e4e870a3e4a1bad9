"""What the SLURM cluster offers, read from `scontrol` instead of asked of the user.

Three calls (`scontrol show config`, `scontrol -o show partition`, `scontrol -o show node`)
give MaxArraySize, each partition's MaxTime and nodes, and each node's CPUs, memory and GPU
gres. `check_profile` compares a study's cluster profile with them, so a job that SLURM would
refuse (or leave pending forever) is refused here with one line naming the setting to change,
before anything is written. Where `scontrol` is missing or does not answer nothing is known and
nothing is checked: sbatch remains the judge.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cluster.errors import ClusterError
from jobs.study import ClusterProfile

Runner = Callable[[Sequence[str]], str | None]
# scontrol answers at once when slurmctld is up; one that fails or does not answer within
# TIMEOUT_S (an unreachable controller: scontrol retries for seconds before it gives up) is
# not asked again for UNANSWERED_HOLD_S, so a command waits once, not once per call
TIMEOUT_S = 5.0
UNANSWERED_HOLD_S = 60.0
_FIELD_RE = re.compile(r"(\w+)=(\S*)")
_unanswered_at: float | None = None


def run_scontrol(args: Sequence[str]) -> str | None:
    """stdout of `scontrol ARGS`, or None when it is not installed or does not answer."""
    global _unanswered_at
    if shutil.which("scontrol") is None:
        return None
    if _unanswered_at is not None and time.monotonic() - _unanswered_at < UNANSWERED_HOLD_S:
        return None
    try:
        out = subprocess.run(["scontrol", *args], capture_output=True, text=True,
                             timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        out = None
    if out is None or out.returncode != 0:
        _unanswered_at = time.monotonic()
        return None
    _unanswered_at = None
    return out.stdout


@dataclass(frozen=True)
class Gpus:
    type: str | None          # the gres type (`gpu:h100:8` → "h100"), None when untyped
    count: int


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    mem_mb: int
    gpus: tuple[Gpus, ...]
    partitions: tuple[str, ...]

    def gpu_count(self, gpu_type: str | None) -> int:
        return sum(g.count for g in self.gpus if gpu_type is None or g.type == gpu_type)


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    state: str
    max_time_min: int | None  # None: UNLIMITED


@dataclass(frozen=True)
class SlurmInfo:
    max_array_size: int | None
    partitions: dict[str, Partition]
    nodes: tuple[Node, ...]

    def partition(self, name: str | None) -> Partition | None:
        """The named partition, or the cluster's default one for None."""
        if name is not None:
            return self.partitions.get(name)
        return next((p for p in self.partitions.values() if p.default), None)

    def nodes_of(self, partition: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if partition in n.partitions)

    def gpu_types(self, partition: str) -> tuple[str, ...]:
        """The typed GPU gres of the partition's nodes, sorted."""
        return tuple(sorted({g.type for n in self.nodes_of(partition) for g in n.gpus
                             if g.type is not None}))


def _fields(line: str) -> dict[str, str]:
    return {k: v for k, v in _FIELD_RE.findall(line)}


def parse_time_min(text: str) -> int | None:
    """SLURM's time format (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH[:MM[:SS]]`) in whole minutes
    (rounded up); None for UNLIMITED/INFINITE (and for what cannot be read: no limit known)."""
    try:
        return _time_min(text)
    except ValueError:
        return None


def _time_min(text: str) -> int | None:
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(x) for x in text.split(":")]
        h, m, s = [*parts, 0, 0][:3]
    else:
        parts = [int(x) for x in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts[0], parts[1], parts[2]
    return days * 1440 + h * 60 + m + (1 if s > 0 else 0)


def parse_gres(text: str) -> tuple[Gpus, ...]:
    """The GPUs of a node's `Gres=` value: `gpu:2`, `gpu:h100:8(S:0-1)`, `gpu:a100:4,shard:8`."""
    out: list[Gpus] = []
    for item in re.split(r",(?![^(]*\))", text):
        item = re.sub(r"\(.*?\)", "", item).strip()
        parts = item.split(":")
        if not parts or parts[0] != "gpu" or len(parts) < 2:
            continue
        try:
            count = int(parts[-1])
        except ValueError:
            continue
        out.append(Gpus(parts[1] if len(parts) >= 3 else None, count))
    return tuple(out)


def parse_config(text: str) -> int | None:
    """MaxArraySize from `scontrol show config`."""
    m = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def parse_partitions(text: str) -> dict[str, Partition]:
    """`scontrol -o show partition`: one partition per line."""
    out: dict[str, Partition] = {}
    for line in text.splitlines():
        f = _fields(line)
        if "PartitionName" not in f:
            continue
        out[f["PartitionName"]] = Partition(
            name=f["PartitionName"], default=f.get("Default", "NO").upper() == "YES",
            state=f.get("State", "UP"), max_time_min=parse_time_min(f.get("MaxTime", "")))
    return out


def parse_nodes(text: str) -> tuple[Node, ...]:
    """`scontrol -o show node`: one node per line."""
    out: list[Node] = []
    for line in text.splitlines():
        f = _fields(line)
        if "NodeName" not in f:
            continue
        gres = f.get("Gres", "")
        out.append(Node(
            name=f["NodeName"], cpus=int(f.get("CPUTot", "0") or 0),
            mem_mb=int(f.get("RealMemory", "0") or 0),
            gpus=parse_gres(gres) if gres not in ("", "(null)") else (),
            partitions=tuple(p for p in f.get("Partitions", "").split(",") if p)))
    return tuple(out)


def read(runner: Runner = run_scontrol) -> SlurmInfo | None:
    """What the cluster offers, or None when `scontrol` does not answer."""
    texts: list[str] = []
    for args in (["show", "config"], ["-o", "show", "partition"], ["-o", "show", "node"]):
        text = runner(args)
        if text is None:  # no answer: the next two would wait as long for nothing
            return None
        texts.append(text)
    config, partitions, nodes = texts
    return SlurmInfo(parse_config(config), parse_partitions(partitions), parse_nodes(nodes))


def problems(profile: ClusterProfile, info: SlurmInfo) -> list[str]:
    """One line per setting of `profile` this cluster cannot honour, each naming the fix."""
    part = info.partition(profile.partition)
    if part is None:
        names = ", ".join(sorted(info.partitions)) or "none"
        if profile.partition is None:
            return [f"the cluster has no default partition: set cluster.partition (one of "
                    f"{names})"]
        return [f"cluster.partition = {profile.partition!r}: no such partition on this "
                f"cluster; choose one of {names}"]
    out: list[str] = []
    where = f"partition {part.name!r}"
    if part.max_time_min is not None and profile.time_limit_min > part.max_time_min:
        out.append(f"cluster.time_limit_min = {profile.time_limit_min} exceeds the "
                   f"{part.max_time_min} min MaxTime of {where}; set it to "
                   f"{part.max_time_min} or less")
    nodes = info.nodes_of(part.name)
    if nodes:
        cpus = max(n.cpus for n in nodes)
        if profile.cpus_per_task > cpus:
            out.append(f"cluster.cpus_per_task = {profile.cpus_per_task} but the nodes of "
                       f"{where} have at most {cpus} CPUs; set it to {cpus} or less")
        mem_mb = max(n.mem_mb for n in nodes)
        if mem_mb > 0 and profile.mem_gb * 1024 > mem_mb:
            out.append(f"cluster.mem_gb = {profile.mem_gb:g} but the nodes of {where} have at "
                       f"most {mem_mb / 1024:.1f} GB; lower it")
        if profile.gpus_per_task > 0:
            gpus = max(n.gpu_count(profile.gpu_type) for n in nodes)
            if gpus < profile.gpus_per_task:
                kind = f"GPU(s) of gres type {profile.gpu_type!r}" if profile.gpu_type \
                    else "GPU(s)"
                have = ", ".join(sorted({f"gpu:{g.type + ':' if g.type else ''}{g.count}"
                                         for n in nodes for g in n.gpus})) or "no GPUs"
                out.append(f"cluster.gpus_per_task = {profile.gpus_per_task} but no node of "
                           f"{where} has {profile.gpus_per_task} {kind} (they have: {have}); "
                           f"choose another partition or cluster.gpu_type, or set "
                           f"gpus_per_task = 0 for CPU tasks")
    return out


def check(profile: ClusterProfile, info: SlurmInfo | None) -> None:
    """ClusterError (the first problem, one line) unless the cluster can run `profile`."""
    if info is None:
        return
    found = problems(profile, info)
    if found:
        raise ClusterError(found[0])


def gres_model(profile: ClusterProfile, info: SlurmInfo | None) -> str | None:
    """The GPU model the tasks will get, as the partition names it: the requested gres type,
    else the only GPU gres type of the partition's nodes (None when untyped or mixed)."""
    if profile.gpus_per_task == 0:
        return None
    if profile.gpu_type:
        return profile.gpu_type
    if info is None:
        return None
    part = info.partition(profile.partition)
    if part is None:
        return None
    types = info.gpu_types(part.name)
    return types[0] if len(types) == 1 else None
