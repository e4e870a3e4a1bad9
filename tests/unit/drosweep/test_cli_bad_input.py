"""Bad input is one line and exit code 2, before anything is written: a fuzz over study files,
the frozen study file, the ledger and the arguments of `drosweep train`, plus the limits and the
cluster boundary checked at submit (sbatch_extra, the study root, memory, data, disk full)."""

from __future__ import annotations

import errno
import os
import random
import shlex
import sys
import time
from pathlib import Path

import pytest
from study_fuzz import FZ, VALUES, _cli, _keys, _with

from cluster import plan, submit
from cluster.errors import ClusterError
from cluster.executors.slurm import SlurmExecutor
from drosweep.errors import input_errors
from jobs import Paths, expand, load_study
from jobs.sbatch import RESERVED_SBATCH
from studies import study_text


def _clean(rc: int, err: str, case: object) -> None:
    """Success, or exit code 2 with exactly one line and no traceback (an unexpected exception
    escapes `main` and fails the test by itself)."""
    assert rc in (0, 2), (case, rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, (case, err)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


# --- the fuzz over study files -----------------------------------------------------------------

def _library(path: Path) -> None:
    """What `plan` and `submit --dry-run` run, without the CLI's parser (fast enough to fuzz):
    success, or an input error of one line."""
    try:
        study = load_study(path)
        plan(expand(study), study.cluster)
        submit(study, "local", dry_run=True, progress=False)
    except input_errors() as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), str(exc)


def test_fuzz_study_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every key of the study file × many values: `plan` and `submit --dry-run` succeed or say
    one line (every 25th case also through the CLI, for the exit code)."""
    root = tmp_path / "root"
    base = study_text(root, **FZ)
    path = tmp_path / "s.toml"
    cases = 0
    for table, key in _keys():
        for value in VALUES:
            path.write_text(_with(base, table, key, value))
            _library(path)
            if cases % 25 == 0:
                for argv in (["plan", str(path)],
                             ["submit", str(path), "--dry-run", "--executor", "local"]):
                    rc, _, err = _cli(argv, capsys)
                    _clean(rc, err, (table, key, value, argv[0]))
            cases += 1
    assert not root.exists()  # nothing written by any of them
    assert cases >= 3000


def test_fuzz_study_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Random byte flips, insertions and cuts of a valid study file (non-UTF-8 included)."""
    rng = random.Random(9)
    base = study_text(tmp_path / "root", **FZ).encode()
    path = tmp_path / "s.toml"
    for case in range(600):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            at = rng.randrange(len(data))
            if kind < 0.4:
                data[at] = rng.randrange(256)
            elif kind < 0.7:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
            else:
                del data[at:]
                data += b"\n"
        path.write_bytes(bytes(data))
        rc, _, err = _cli(["plan", str(path)], capsys)
        _clean(rc, err, (case, bytes(data)))
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("radii = [100.0]", "N(eps) = ~1e"),
    ("radii = [5]", "more than the limit 100,000,000"),
    ("radii = [1e308]", "more than the limit 1000"),
    ("radii = [0.7]", "use a radius <= 0.62"),
    ("trials = 10_000_000", "more than the limit 100,000"),
    ("trials = 60_000", "the grid has 120,000 trials"),
    ("radii = [" + ", ".join(str(0.001 * (i + 1)) for i in range(1_000_000)) + "]",
     "1,000,000 radii, more than the limit 1,000"),
])
def test_absurd_grid_refused_fast(text: str, message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    key = text.split(" = ")[0]
    path = tmp_path / "s.toml"
    path.write_text(_with(study_text(tmp_path / "root", **FZ), None, key, text.split(" = ", 1)[1]))
    start = time.monotonic()
    rc, _, err = _cli(["plan", str(path)], capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - start < 30  # the million radii are not compared pairwise


@pytest.mark.parametrize(("table", "text", "message"), [
    ("training", "hidden = 100000", "'hidden' must be <= 16,384"),
    ("evaluation", "n_growth = 1e300", "the evaluation's N(eps)"),
])
def test_absurd_settings(table: str, text: str, message: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    key, value = text.split(" = ")
    path = tmp_path / "s.toml"
    path.write_text(_with(study_text(tmp_path / "root", **FZ), table, key, value))
    rc, _, err = _cli(["submit", str(path), "--dry-run", "--executor", "local"], capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


# --- the frozen study file and the ledger ----------------------------------------------------

def _submitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Paths]:
    path = tmp_path / "s.toml"
    path.write_text(study_text(tmp_path / "root", **FZ))
    rc, _, err = _cli(["submit", str(path), "--executor", "local", "--no-progress"], capsys)
    assert rc == 0, err
    return path, Paths(tmp_path / "root")


def test_fuzz_frozen_study_and_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, paths = _submitted(tmp_path, capsys)
    rng = random.Random(4)
    frozen, ledger = paths.study_file.read_bytes(), paths.ledger.read_bytes()
    garbage = [b"\xff\xfe\x00\x01", b"\x80abc", b"hello", b"{}", b"[1, 2]", b"null", b"\x00" * 50,
               b'{"array_id": 1}', b'{"array_id": "1", "tasks": 3}', "é".encode("latin-1"),
               b"name = 1", b"\n\n\n"]
    cases = 0
    for target, pristine in ((paths.study_file, frozen), (paths.ledger, ledger)):
        variants = [g for g in garbage] + [pristine + g for g in garbage] + \
            [g + pristine for g in garbage]
        for _ in range(70):
            data = bytearray(pristine)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            variants.append(bytes(data))
        for data in variants:
            target.write_bytes(data)
            for argv in (["status", str(source)], ["resume", str(source), "--dry-run",
                                                   "--executor", "local"]):
                rc, _, err = _cli(argv, capsys)
                _clean(rc, err, (target.name, data[:40], argv[0]))
                cases += 1
        target.write_bytes(pristine)
    print(f"frozen-study and ledger cases: {cases}")
    assert cases >= 400


def test_non_utf8_ledger_and_frozen_study_named(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    source, paths = _submitted(tmp_path, capsys)
    ledger = paths.ledger.read_bytes()
    paths.ledger.write_bytes(ledger + b"\xff\xfe garbage\n")
    rc, _, err = _cli(["status", str(source)], capsys)
    assert rc == 2 and "ledger.jsonl:2: not a submission record (not UTF-8 text)" in err
    paths.ledger.write_bytes(ledger)
    paths.study_file.write_bytes(b"\xff" + paths.study_file.read_bytes())
    rc, _, err = _cli(["resume", str(source), "--executor", "local"], capsys)
    assert rc == 2 and "frozen study file is not UTF-8" in err


# --- `drosweep train` arguments --------------------------------------------------------------

TRAIN_BASE = {"-t": "robust", "-r": "0.05", "-i": "0", "--epochs": "1", "--max-steps": "1",
              "--batch-size": "100", "--checkpoint-every": "5"}
TRAIN_VALUES = {  # all but two are refused: a valid one trains a step, which is slow to fuzz
    "-r": ["abc", "", "1e308", "5", "100", "nan", "inf", "-inf", "-0.1", "0x10", "1,5", "0.1.2",
           "1e-400", "--", "1_0", "0.63", "1e", "+-1", "1e400", "0.05.", "٣", "1e-5e"],
    "-i": ["abc", "-1", "1.5", "", "1e3", "0x1", "-", "--5", "+", "1 2", " 3"],
    "-t": ["sharpness", "", "ROBUST", "robust ", "regular"],
    "--epochs": ["0", "-5", "x", "1e9", ""],
    "--max-steps": ["0", "-1", "x", "1.0"],
    "--batch-size": ["0", "-1", "x", "nan"],
    "--checkpoint-every": ["0", "x", "-3"],
    "--train-subset": ["0", "-1", "x"],
    "--seed": ["-1", "x", "1.5"],
    "-d": ["tpu", "", "cuda:x", "gpu"],
}


def test_fuzz_train_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = 0
    for flag, values in TRAIN_VALUES.items():
        for value in values:
            args = {**TRAIN_BASE, flag: value}
            save = tmp_path / f"c{cases}" / "deep" / "out"
            argv = ["train", "-s", str(save), "--dataset", "synthetic", "--no-progress"]
            for k, v in args.items():
                argv += [k, v]
            rc, _, err = _cli(argv, capsys)
            _clean(rc, err, (flag, value))
            if rc == 2:  # a refused run leaves no folder behind
                assert not (tmp_path / f"c{cases}").exists(), (flag, value)
            cases += 1
    print(f"train-argument cases: {cases}")
    assert cases >= 60


@pytest.mark.parametrize(("radius", "message"), [
    ("5", "N(eps) = ~1e44 ball samples per point"), ("1e308", "radius must be <= 1000"),
    ("0.7", "more than the limit 100,000,000"), ("abc", "invalid float value: 'abc'")])
def test_train_radius_messages(radius: str, message: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _cli(["train", "-t", "robust", "-r", radius, "-s", str(tmp_path / "o"), "-i",
                       "0", "--dataset", "synthetic"], capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


# --- disk full ---------------------------------------------------------------------------------

def test_disk_full_while_checkpointing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "-t", "regular", "-r", "0", "-i", "1", "--dataset", "synthetic",
            "--epochs", "2", "--checkpoint-every", "3", "--no-progress"]
    assert _cli([*argv, "-s", str(tmp_path / "ref")], capsys)[0] == 0
    real_fsync, calls = os.fsync, [0]

    def full(fd: int) -> None:
        calls[0] += 1
        if calls[0] >= 3:  # the first checkpoint (file + folder) goes through, then the disk fills
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    save = tmp_path / "full"
    rc, _, err = _cli([*argv, "-s", str(save)], capsys)
    monkeypatch.setattr(os, "fsync", real_fsync)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert "eps_0.0_trial_1.ckpt: cannot write (No space left on device)" in lines[0]
    assert "previous checkpoint" in lines[0] and ".ckpt.prev is intact" in lines[0]
    assert "run again to resume" in lines[0]
    assert not list(save.glob(".*.tmp"))
    rc, _, err = _cli([*argv, "-s", str(save)], capsys)  # space freed: resumes from .prev
    assert rc == 0, err
    assert (save / "eps_0.0_trial_1.pt").read_bytes() == (tmp_path / "ref" / "eps_0.0_trial_1.pt"
                                                         ).read_bytes()


def test_disk_full_while_writing_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import trainers.loop

    def full(obj: object, path: object) -> str:
        raise trainers.loop.StorageError.of(Path(str(path)), OSError(errno.ENOSPC,
                                                                     "No space left on device"))

    monkeypatch.setattr(trainers.loop, "atomic_torch_save", full)
    rc, _, err = _cli(["train", "-t", "regular", "-r", "0", "-i", "1", "--dataset", "synthetic",
                       "--max-steps", "2", "-s", str(tmp_path), "--no-progress"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "eps_0.0_trial_1.pt: cannot write" in err and "no checkpoint yet" in err
    rc, _, err = _cli(["train", "-t", "regular", "-r", "0", "-i", "1", "--dataset", "synthetic",
                       "--max-steps", "2", "--checkpoint-every", "1", "-s", str(tmp_path),
                       "--no-progress"], capsys)
    assert rc == 2 and "eps_0.0_trial_1.ckpt is intact" in err, err


# --- stale temp files ------------------------------------------------------------------------

def test_stale_temp_files_removed_when_the_trial_starts(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source, paths = _submitted(tmp_path, capsys)
    trial = paths.runs / "regular" / "eps_0" / "trial_0"
    old = time.time() - 3600
    stale = [trial / ".ckpt.pt.abc123.tmp", trial / ".model.pt.x.tmp", trial / ".DONE.json.q.tmp",
             trial / ".spec.json.z.tmp", trial / ".FAILED.json.y.tmp"]
    # the trainer holds its trial (trainers/trial_lock.py): its own temp files go whatever
    # their age; the task's markers have no lock, so a young one may be a live writer's
    held = trial / ".ckpt.pt.killed.tmp"
    stale.append(held)
    fresh = trial / ".DONE.json.live.tmp"  # a concurrent writer's: younger than a minute
    for f in [*stale, fresh]:
        f.write_bytes(b"partial")
        if f not in (fresh, held):
            os.utime(f, (old, old))
    other = tmp_path / "keep.tmp"
    other.write_bytes(b"x")
    (trial / "DONE.json").unlink()
    rc, _, err = _cli(["resume", str(source), "--executor", "local", "--no-progress"], capsys)
    assert rc == 0, err
    assert not any(f.exists() for f in stale) and fresh.exists() and other.exists()


# --- refused submissions leave nothing behind; the cluster boundary --------------------------

def _study_with(tmp_path: Path, root: Path, extra: str = "", table: str = "cluster") -> Path:
    text = study_text(root, **FZ)
    if extra:
        key, value = extra.split(" = ", 1)
        text = _with(text, table, key, value)
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("extra", "table", "message"), [
    ('sbatch_extra = { output = "x" }', "cluster", "--output is set by drosweep"),
    ('sbatch_extra = { array = "0-3" }', "cluster", "cluster.max_array_size"),
    ("mem_gb = 0.1", "cluster", "more than cluster.mem_gb = 0.1"),
    ('data_dir = "/nonexistent/avila"', None, "not found"),
    ("pgd_steps = 0", "evaluation", "evaluation setting 'pgd_steps'"),
])
def test_refused_submit_leaves_nothing(extra: str, table: str | None, message: str,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(SlurmExecutor, "check", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "cluster_info", lambda self: None)  # no real cluster read
    monkeypatch.setattr(SlurmExecutor, "submit", _never)
    text = study_text(tmp_path / "a" / "b" / "root", **{**FZ, "dataset": "avila"})
    key, value = extra.split(" = ", 1)
    path = tmp_path / "s.toml"
    path.write_text(_with(text, table, key, value))
    rc, _, err = _cli(["submit", str(path)], capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "a").exists()


def _never(self: SlurmExecutor, packs: object, *options: object) -> list[str]:
    raise AssertionError("a refused submission reached sbatch")


def test_refused_by_sbatch_leaves_no_parents_or_lock(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(SlurmExecutor, "check", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "cluster_info", lambda self: None)  # no real cluster read

    def refuse(self: SlurmExecutor, packs: object, *options: object) -> list[str]:
        self.paths.logs.mkdir(parents=True, exist_ok=True)  # submitit's scratch files
        (self.paths.logs / "abc.pkl").write_bytes(b"x")
        (self.paths.logs / ".submission_file_abc.sh").write_text("#!/bin/sh")
        raise ClusterError("sbatch refused the array: invalid partition")

    monkeypatch.setattr(SlurmExecutor, "submit", refuse)
    path = _study_with(tmp_path, tmp_path / "new" / "deeper" / "root")
    rc, _, err = _cli(["submit", str(path)], capsys)
    assert rc == 2 and "invalid partition" in err
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    path = _study_with(tmp_path, existing)
    rc, _, err = _cli(["submit", str(path)], capsys)
    assert rc == 2 and not any(existing.iterdir())  # no lock file, no logs/
    (existing / "logs").mkdir()
    (existing / "logs" / "12_0_log.out").write_text("an earlier job's log")
    rc, _, err = _cli(["submit", str(path)], capsys)
    assert rc == 2 and [p.name for p in existing.rglob("*")] == ["logs", "12_0_log.out"]


def test_every_reserved_sbatch_option_and_its_abbreviations(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            no_slurm_needed: None) -> None:
    monkeypatch.setattr(SlurmExecutor, "check", lambda self: None)
    monkeypatch.setattr(SlurmExecutor, "cluster_info", lambda self: None)  # no real cluster read
    monkeypatch.setattr(SlurmExecutor, "submit", _never)
    cases = 0
    for option, instead in RESERVED_SBATCH.items():
        for key in {option, option.replace("-", "_"), option[:max(3, len(option) - 2)]}:
            path = _study_with(tmp_path, tmp_path / "root", f'sbatch_extra = {{ {key} = "1" }}')
            rc, _, err = _cli(["submit", str(path), "--dry-run"], capsys)
            assert rc == 2 and "is set by drosweep" in err and instead.split(" ")[0] in err, err
            cases += 1
    for key in ("exclude", "nodelist", "mail-type", "comment", "reservation", "exclusive"):
        path = _study_with(tmp_path, tmp_path / "root", f'sbatch_extra = {{ {key} = "x" }}')
        rc, _, err = _cli(["submit", str(path), "--dry-run"], capsys)
        assert rc == 0, (key, err)
        cases += 1
    print(f"sbatch_extra cases: {cases}")


@pytest.mark.parametrize("bad", ["%j", "100%", "a\nb", "tab\there", "bell\x07", "del\x7f"])
def test_root_slurm_would_expand_is_refused(bad: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(study_text("x", **FZ).replace('root = "x"', "root = " + _toml_str(
        str(tmp_path / f"r{bad}"))))
    rc, _, err = _cli(["submit", str(path), "--dry-run", "--executor", "local"], capsys)
    assert rc == 2 and "choose another root" in err and len(err.strip().splitlines()) == 1, err
    assert not any(p.name.startswith("r") for p in tmp_path.iterdir())


def _toml_str(text: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                         for c in text) + '"'


def test_python_path_is_quoted(tmp_path: Path, no_slurm_needed: None) -> None:
    study = load_study(_study_with(tmp_path, tmp_path / "root"))
    ex = SlurmExecutor(study, Paths(study.root)).submitit_executor(1)
    assert ex.python == shlex.quote(sys.executable)
    assert ex._submitit_command_str.startswith(shlex.quote(sys.executable) + " -u -m")
