"""The same study through `submit --executor local` and `--executor debug` (no SLURM needed):
same trials, same markers, bit-identical models; and `plan` of the paper study is quick."""

from __future__ import annotations

import pdb
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drosweep.cli import main
from jobs import Paths, Study, expand, read_done

REPO = Path(__file__).resolve().parents[2]


def test_local_and_debug_produce_the_same_markers(make_study: Callable[..., Study],
                                                  tmp_path: Path, capsys: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdb, "post_mortem", lambda *a, **k: None)  # debug: no prompt in tests
    study = make_study(methods=("regular", "robust"), radii=(0.05,), trials=2, epochs=2,
                       max_pack=2, training="n_base = 8\ntemp_steps = 5")
    roots = {name: tmp_path / name for name in ("local", "debug")}
    for name, root in roots.items():
        assert main(["submit", str(study.source), "--executor", name, "--root", str(root),
                     "--no-progress"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert out.count("run finished: 0 failure(s)") == 2
    fields = ("key", "model_sha256", "steps", "epochs", "resumed_from", "spec", "slurm_job_id")
    for trial in expand(study):
        local = read_done(Paths(roots["local"]), trial)
        debug = read_done(Paths(roots["debug"]), trial)
        assert local is not None and debug is not None
        assert [getattr(local, f) for f in fields] == [getattr(debug, f) for f in fields]
        assert (Paths(roots["local"]).model(trial).read_bytes()
                == Paths(roots["debug"]).model(trial).read_bytes())
    # run again: everything is done, nothing runs
    assert main(["submit", str(study.source), "--executor", "local", "--root",
                 str(roots["local"]), "--no-progress"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_debug_failure_is_marked(make_study: Callable[..., Study], capsys: Any,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(pdb, "post_mortem", lambda *a, **k: calls.append(a))
    study = make_study(methods=("regular",), trials=1, training="max_steps = 3")
    monkeypatch.setenv("DROSWEEP_DATA_DIR", "/nonexistent")
    text = study.source.read_text().replace('dataset = "synthetic"', 'dataset = "avila"')
    text = text.replace('root = "', 'data_dir = "/work/nonexistent"\nroot = "', 1)
    study.source.write_text(text)
    assert main(["submit", str(study.source), "--executor", "debug", "--no-progress"]) == 2
    assert "not found" in capsys.readouterr().err  # refused before running: data missing


def test_plan_of_the_paper_study_is_quick(no_slurm_needed: None) -> None:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "drosweep", "plan",
                           str(REPO / "studies" / "paper.toml")],
                          capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert "1122 trials" in proc.stdout and "total" in proc.stdout
    print(f"drosweep plan studies/paper.toml: {elapsed:.2f}s")
    assert elapsed < 5.0
