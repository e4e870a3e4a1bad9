"""The submission ledger: append-only, durable, tolerant of a torn last line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import ledger
from cluster.errors import ClusterError


def record(array: str, keys: list[list[str]], reason: str = "submit") -> ledger.Submission:
    return ledger.Submission(
        submission_id=f"s{array}", executor="slurm", array_id=array,
        submitted_at=ledger.now_iso(), reason=reason, fingerprint="f",
        tasks=tuple(ledger.TaskRecord(i, f"{array}_{i}", tuple(k)) for i, k in enumerate(keys)))


def test_round_trip_and_latest(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    assert ledger.read(path) == []
    first = record("10", [["a/eps_0/trial_0", "a/eps_0/trial_1"], ["b/eps_0.1/trial_0"]])
    second = record("11", [["b/eps_0.1/trial_0"]], reason="resume")
    ledger.append(path, first)
    ledger.append(path, second)
    subs = ledger.read(path)
    assert subs == [first, second]
    latest = ledger.latest_tasks(subs)
    assert latest["a/eps_0/trial_1"][1].job_id == "10_0"
    assert latest["b/eps_0.1/trial_0"][1].job_id == "11_0"
    assert subs[0].submitted_epoch > 0


def test_torn_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger.append(path, record("1", [["k"]]))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('\n{"array_id": "2", "tas')
    assert [s.array_id for s in ledger.read(path)] == ["1"]
    ledger.append(path, record("3", [["k"]]))  # appends after the torn line stay readable
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"arr')
    assert [s.array_id for s in ledger.read(path)] == ["1", "3"]


def test_foreign_lines_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger.append(path, record("1", [["k"]]))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"not": "a record"}\n')
    with pytest.raises(ClusterError, match=r"ledger.jsonl:2: not a submission record"):
        ledger.read(path)


def test_append_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger.append(path, record("1", [["k"]]))
    before = path.read_bytes()
    ledger.append(path, record("2", [["k"]]))
    assert path.read_bytes().startswith(before)
