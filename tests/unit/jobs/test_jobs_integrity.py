"""Nothing silently wrong: content hashes on checkpoints, the model file always the final state,
a model that no longer matches its DONE marker reported and never trained over or evaluated."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from reduce_support import QUICK, finish_all, tiny_study

from common.atomic import (
    IntegrityError,
    atomic_torch_save_verified,
    sha256_file,
    torch_load_verified,
)
from drosweep.cli import main
from jobs import Paths, TaskPack, TrialOutcome, expand, parse_study, read_done, run_pack
from jobs.integrity import verify_models
from reduce import ReduceOptions, reduce_study
from studies import study_text
from trainers.checkpoint import CheckpointError, _read, load_checkpoint
from trainers.loop import TrainPaths, train
from trainers.spec import Method, TrainSettings, TrainSpec

SMALL = TrainSettings(epochs=2, batch_size=50, hidden=16, checkpoint_every=3)


def _spec(max_steps: int | None = None) -> TrainSpec:
    settings = TrainSettings(**{**SMALL.__dict__, "max_steps": max_steps})
    return TrainSpec(Method.REGULAR, 0.0, 7, settings, "synthetic")


def _paths(folder: Path) -> TrainPaths:
    return TrainPaths(folder / "model.pt", folder / "ckpt.pt")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _tensor_offsets(path: Path, tensor: torch.Tensor) -> tuple[int, int]:
    """Where `tensor`'s bytes sit in the file (the verified payload is stored uncompressed)."""
    raw = tensor.contiguous().numpy().tobytes()
    start = path.read_bytes().find(raw)
    assert start > 0
    return start, start + len(raw)


# what torch.load raises on a damaged file (one bit flipped in its zip structure or pickle),
# each seen over every offset of such a file; `trainers.checkpoint._read` turns them into one
# CheckpointError. Anything else from a flipped bit is a new failure mode to look at.
DAMAGED_FILE_ERRORS = (RuntimeError, pickle.UnpicklingError, ValueError, IndexError, TypeError,
                       KeyError, EOFError, zipfile.BadZipFile)


# --- content hash of checkpoints -------------------------------------------------------------

def test_verified_round_trip_and_every_tensor_byte_flip_is_caught(tmp_path: Path) -> None:
    obj = {"w": torch.arange(64, dtype=torch.float32), "step": 3, "name": "x"}
    path = tmp_path / "f.pt"
    digest = atomic_torch_save_verified(obj, path)
    loaded = torch_load_verified(path)
    assert torch.equal(loaded["w"], obj["w"]) and loaded["step"] == 3 and len(digest) == 64
    start, end = _tensor_offsets(path, obj["w"])
    pristine = path.read_bytes()
    for offset in range(start, end):  # 256 one-byte flips in tensor data: each is an error
        _flip(path, offset)
        with pytest.raises(IntegrityError, match="does not match"):
            torch_load_verified(path)
        path.write_bytes(pristine)


def test_a_flip_anywhere_is_an_error_or_changes_nothing(tmp_path: Path) -> None:
    obj = {"w": torch.randn(40), "k": [1, 2, 3]}
    path = tmp_path / "f.pt"
    atomic_torch_save_verified(obj, path)
    pristine = path.read_bytes()
    step = max(1, len(pristine) // 300)
    caught = unreadable = 0
    for offset in range(0, len(pristine), step):  # ~300 flips over the whole file
        _flip(path, offset)
        try:
            loaded = torch_load_verified(path)
        except IntegrityError:  # the hash (or its wrapper) no longer matches
            caught += 1
        except DAMAGED_FILE_ERRORS:  # torch.load could not read the damaged zip or pickle
            unreadable += 1
        else:  # a flip in zip padding or metadata nobody reads: the content is still exact
            assert torch.equal(loaded["w"], obj["w"]) and loaded["k"] == [1, 2, 3]
        path.write_bytes(pristine)
    assert caught > 0 and unreadable > 0


def test_flipped_checkpoint_falls_back_to_previous(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    train(_spec(max_steps=3), paths, progress=False)
    train(_spec(max_steps=6), paths, progress=False)  # ckpt at step 6, ckpt.prev at step 3
    good = _read(paths.checkpoint)
    weight = good["model"]["layer2.weight"]
    start, end = _tensor_offsets(paths.checkpoint, weight)
    for offset in (start, (start + end) // 2, end - 1):
        pristine = paths.checkpoint.read_bytes()
        _flip(paths.checkpoint, offset)
        with pytest.raises(CheckpointError, match="does not match"):
            _read(paths.checkpoint)
        with pytest.warns(UserWarning, match="trying the previous checkpoint"):
            ck = load_checkpoint(paths.checkpoint, paths.previous_checkpoint, _spec(6))
        assert ck is not None and ck["step"] == 3  # the previous generation, never other weights
        paths.checkpoint.write_bytes(pristine)


# --- the model file is the final state of the run that reports it --------------------------

def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def test_longer_rerun_rewrites_the_model_file(tmp_path: Path) -> None:
    ref = train(_spec(max_steps=7), _paths(tmp_path / "ref"), progress=False)
    paths = _paths(tmp_path / "grown")
    short = train(_spec(max_steps=4), paths, progress=False)
    assert short.model_sha256 == sha256_file(paths.model)
    longer = train(_spec(max_steps=7), paths, progress=False)  # step 7 is checkpointed
    assert longer.steps == 7 and longer.model_sha256 == sha256_file(paths.model)
    assert longer.model_sha256 == ref.model_sha256 != short.model_sha256
    for key, value in _state(tmp_path / "ref" / "model.pt").items():
        assert torch.equal(_state(paths.model)[key], value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "missing"])
def test_rerun_over_a_damaged_model_rewrites_it(damage: str, tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    first = train(_spec(max_steps=5), paths, progress=False)
    if damage == "garbage":
        paths.model.write_bytes(b"\x00garbage\xff" * 100)
    elif damage == "truncated":
        paths.model.write_bytes(paths.model.read_bytes()[:200])
    elif damage == "flipped":
        _flip(paths.model, _tensor_offsets(paths.model, _state(paths.model)["layer1.weight"])[0])
    else:
        paths.model.unlink()
    again = train(_spec(max_steps=5), paths, progress=False)
    assert again.model_sha256 == first.model_sha256 == sha256_file(paths.model)


# --- DONE markers: a model that does not match is reported, never trained over or re-certified

def _study(tmp_path: Path):
    text = study_text(tmp_path / "root", name="integrity", radii=[0.05], trials=2,
                      training={"epochs": 1, "hidden": 16, "batch_size": 50})
    study = parse_study(text, tmp_path / "s.toml")
    return study, expand(study), Paths(study.root)


def _run(study, specs) -> dict[str, TrialOutcome]:
    result = run_pack(TaskPack(root=str(study.root), trials=tuple(specs), device="cpu"))
    return dict(result.outcomes)


def test_corrupt_model_under_done_is_reported_not_retrained(tmp_path: Path) -> None:
    study, specs, paths = _study(tmp_path)
    assert set(_run(study, specs).values()) == {TrialOutcome.DONE}
    assert verify_models(paths, specs).ok
    _flip(paths.model(specs[0]), 600)
    damaged = paths.model(specs[0]).read_bytes()
    outcome = _run(study, specs)  # what `resume` runs: the DONE trial is left alone
    assert outcome[specs[0].key] is TrialOutcome.SKIPPED
    assert paths.model(specs[0]).read_bytes() == damaged
    report = verify_models(paths, specs)
    assert report.checked == 2 and [k for k, _ in report.problems] == [specs[0].key]
    assert "does not match its DONE marker" in report.problems[0][1]
    paths.model(specs[1]).unlink()
    assert "model file missing" in dict(verify_models(paths, specs).problems)[specs[1].key]


@pytest.mark.parametrize("marker", ["lost", "torn", "garbage", "empty"])
@pytest.mark.parametrize("damage", ["flipped", "garbage"])
def test_corrupt_model_under_lost_marker_is_never_recertified(marker: str, damage: str,
                                                              tmp_path: Path) -> None:
    study, specs, paths = _study(tmp_path)
    _run(study, specs[:1])
    done = read_done(paths, specs[0])
    assert done is not None
    good_sha = done.model_sha256
    model = paths.model(specs[0])
    if damage == "flipped":
        _flip(model, _tensor_offsets(model, _state(model)["layer2.weight"])[0] + 5)
    else:
        model.write_bytes(b"PK\x03\x04 not a model")
    bad_sha = sha256_file(model)
    path = paths.done(specs[0])
    if marker == "lost":
        path.unlink()
    elif marker == "torn":
        path.write_bytes(path.read_bytes()[:40])
    elif marker == "garbage":
        path.write_bytes(b"\xff\xfe\x00garbage")
    else:
        path.write_bytes(b"")
    assert _run(study, specs[:1])[specs[0].key] is TrialOutcome.DONE
    again = read_done(paths, specs[0])
    assert again is not None and again.model_sha256 == good_sha != bad_sha
    assert sha256_file(model) == good_sha  # rewritten from the verified final checkpoint


def test_reduce_verifies_cached_rows_against_the_marker(tmp_path: Path) -> None:
    study = tiny_study(tmp_path / "s")
    trials = finish_all(study)
    opts = ReduceOptions(progress=False)
    first = reduce_study(study, opts, QUICK)
    assert not first.errors
    paths = Paths(study.root)
    model = paths.model(trials[2])
    _flip(model, _tensor_offsets(model, _state(model)["layer3.bias"])[0])
    again = reduce_study(study, opts, QUICK)
    assert [k for k, _ in again.errors] == [trials[2].key]
    assert "does not match its DONE marker" in again.errors[0][1]
    df = pd.read_parquet(again.parquet)
    rows = df[df["key"] == trials[2].key]
    assert set(rows["metric"]) == {"reduce_error"}  # no metrics of the corrupt file survive
    assert again.reused == len(trials) - 1


def test_status_verify_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study, specs, paths = _study(tmp_path)
    source = tmp_path / "study.toml"
    source.write_text(study.text)
    paths.root.mkdir(parents=True)
    paths.study_file.write_text(study.text)
    _run(study, specs)
    assert main(["status", str(source), "--verify"]) == 0
    assert "2 DONE model file(s) hashed, 0 not matching" in capsys.readouterr().out
    _flip(paths.model(specs[1]), 700)
    assert main(["status", str(source), "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"corrupt {specs[1].key}" in out and "drosweep resume" in out
    assert main(["status", str(source), "--verify", "--json"]) == 1
    assert '"problems"' in capsys.readouterr().out


def test_checkpoint_without_hash_from_an_earlier_version_resumes(tmp_path):
    """A checkpoint written before content hashes (same format, no wrapper) is resumed with one
    warning, not thrown away: the work it holds is kept."""
    import warnings as _warnings

    from trainers.checkpoint import FORMAT, load_checkpoint
    from trainers.spec import Method as _Method
    from trainers.spec import TrainSettings as _Settings
    from trainers.spec import TrainSpec as _Spec

    spec = _Spec(_Method.REGULAR, 0.0, 3, settings=_Settings(epochs=1), dataset="synthetic")
    legacy = {"format": FORMAT, "spec": spec.to_dict(), "step": 5, "epoch": 0, "batch_index": 5,
              "model": {}, "optimizer": {"lr": 0.2}, "scheduler": {}}
    path = tmp_path / "ckpt.pt"
    torch.save(legacy, path)
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        loaded = load_checkpoint(path, tmp_path / "ckpt.pt.prev", spec)
    assert loaded is not None and loaded["step"] == 5
    assert any("before content hashes" in str(w.message) for w in caught)
    torch.save({"format": "other"}, path)
    with _warnings.catch_warnings(record=True):
        _warnings.simplefilter("always")
        assert load_checkpoint(path, tmp_path / "ckpt.pt.prev", spec) is None
