"""What runs after a study's arrays (`then`): a blocking executor runs it in this process once its
tasks have ended; only a submission with arrays chains anything (SLURM: test_cluster_status_resume)."""

from __future__ import annotations

import json
from pathlib import Path

from cluster import submit
from jobs import Paths, expand, load_study, read_done
from studies import write_study


def test_a_blocking_run_calls_then_once_its_tasks_have_ended(tmp_path: Path) -> None:
    f = write_study(tmp_path, name="chain", trials=2, training={"epochs": 1, "hidden": 16},
                    cluster={"max_pack": 1, "device": "cpu"})
    study = load_study(f)
    paths = Paths(study.root)
    calls: list[tuple[str, int]] = []

    def then(root: str) -> None:
        calls.append((root, sum(read_done(paths, t) is not None for t in expand(study))))

    result = submit(study, "debug", progress=False, then=then)
    assert not result.errors and len(result.job_ids) == 2
    assert calls == [(str(study.root), 2)] and result.chained_job is None
    assert [json.loads(line)["reason"] for line in paths.ledger.read_text().splitlines()] \
        == ["submit"]
    again = submit(study, "debug", progress=False, then=then)  # nothing to do: nothing chained
    assert again.job_ids == () and len(calls) == 1
