"""The data-set registry: settings read with the study, grid and csv loaders, fetch, the errors."""

from __future__ import annotations

import dataclasses
import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from dataset_files import write_grid, write_mnist, write_table

from cluster.cost import estimate, shape_of
from drosweep.cli import main
from jobs import expand, parse_study
from jobs.errors import StudyError
from jobs.study import ClusterProfile
from studies import study_text, write_study
from trainers.data import load_dataset
from trainers.datasets import DataError, get_source, names, parse_options
from trainers.datasets.grid import GRID_FILE, install_grid
from trainers.spec import Method, SpecError, TrainSpec

D: dict[str, Any] = {"name": "d", "trials": 2, "base_seed": 5}  # write_study(dataset=..., **D)


def test_registry_names_and_fixed_facts() -> None:
    assert {"avila", "synthetic", "grid", "csv", "mnist"} <= set(names())
    avila, grid = get_source("avila"), get_source("grid")
    assert (avila.n_features, avila.n_classes, avila.train_rows, avila.test_rows) == \
        (8, 12, 10430, 10437)
    assert (grid.n_features, grid.n_classes, grid.train_rows, grid.test_rows) == \
        (12, 2, 8000, 2000)
    assert avila.needs_fetch and grid.needs_fetch and not get_source("csv").needs_fetch
    assert get_source("csv").options_required and not avila.options_required
    with pytest.raises(DataError, match="unknown data set 'nope'; known: avila"):
        get_source("nope")


def test_avila_specs_and_studies_keep_their_bytes(tmp_path: Path) -> None:
    """No [data] for Avila: the spec's dict and the study's science are what they were."""
    spec = TrainSpec(Method.ROBUST, 0.1, 3)
    assert "data" not in spec.to_dict()
    study = parse_study(study_text(tmp_path, **D, dataset="avila"), tmp_path / "s.toml")
    assert "data" not in study.science()
    with pytest.raises(StudyError, match=r"key 'data.noise': unknown setting of data set "
                                         r"'avila'; allowed: none"):
        parse_study(study_text(tmp_path, **D, dataset="avila", data={"noise": 1}),
                    tmp_path / "s.toml")


def test_csv_settings_typed_seeded_and_in_the_spec(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_table(tmp_path / "t.csv")
    data = {"data_file": "t.csv", "label_column": "kind", "drop_columns": ["id", "note"]}
    study = parse_study(study_text(tmp_path / "r", **D, dataset="csv", data=data),
                        tmp_path / "s.toml")
    opts = study.data_options
    assert opts.data_file == str(tmp_path / "t.csv")   # relative to the working directory
    assert opts.seed == 5 and opts.drop_columns == ("id", "note")  # type: ignore[attr-defined]
    assert study.science()["data"]["seed"] == 5
    spec = expand(study)[0].train_spec
    assert spec.data_options == opts
    assert TrainSpec.from_dict(spec.to_dict()) == spec
    # the model's and the cost model's sizes follow the table: 5 features, 3 classes, 96 rows
    shape = shape_of(spec)
    assert (shape.n_features, shape.n_classes, shape.train_rows, shape.test_rows) == (5, 3, 96, 24)
    assert estimate(spec, ClusterProfile()).steps == 1500   # ceil(96 / 100) = 1 step per epoch
    other = dataclasses.replace(spec, dataset="avila", data_options=get_source("avila").options())
    assert estimate(other, ClusterProfile()).steps == 105 * 1500
    # a spec of csv without settings is refused, naming the setting
    with pytest.raises(SpecError, match=r"data\.data_file"):
        TrainSpec(Method.REGULAR, 0.0, 1, dataset="csv").validate()


KIND = {"data_file": "t.csv", "label_column": "kind"}


@pytest.mark.parametrize("data, message", [
    ({"label_column": "kind"}, "key 'data.data_file': missing"),
    ({"data_file": "t.csv"}, "key 'data.label_column': missing"),
    ({**KIND, "test_fraction": 1.5}, "data.test_fraction"),
    ({**KIND, "test_fraction": "x"}, "key 'data.test_fraction': must be a finite number"),
    ({**KIND, "drop_columns": "id"}, "key 'data.drop_columns': must be a list"),
    ({"data_file": "t.csv", "train_file": "a.csv", "label_column": "kind"},
     "key 'data.data_file': give either data_file or train_file"),
    ({"train_file": "a.csv", "label_column": "kind"}, "key 'data.test_file': missing"),
    ({**KIND, "label": "x"}, "key 'data.label': unknown setting of data set 'csv'"),
])
def test_bad_csv_settings_fail_when_the_study_loads(tmp_path: Path, data: dict[str, Any],
                                                    message: str) -> None:
    with pytest.raises(StudyError, match=message) as exc:
        parse_study(study_text(tmp_path, **D, dataset="csv", data=data), tmp_path / "s.toml")
    assert str(exc.value).startswith(str(tmp_path / "s.toml")) and "\n" not in str(exc.value)


def _csv(tmp_path: Path, **options: Any) -> Any:
    table = {"data_file": str(tmp_path / "t.csv"), "label_column": "kind",
             "drop_columns": ["id", "note"], **options}
    return parse_options("csv", table, seed=0)


def test_csv_loader_split_standardized_and_seeded(tmp_path: Path) -> None:
    write_table(tmp_path / "t.csv", rows=120)
    data = load_dataset("csv", None, options=_csv(tmp_path))
    assert data.x_train.shape == (96, 5) and data.x_test.shape == (24, 5)
    assert data.classes == ("k0", "k1", "k2") and data.x_train.dtype == torch.float32
    assert torch.allclose(data.x_train.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(5), atol=1e-4)
    again = load_dataset("csv", None, options=_csv(tmp_path))
    assert torch.equal(again.x_test, data.x_test)
    other = load_dataset("csv", None, options=_csv(tmp_path, seed=1))
    assert not torch.equal(other.x_test, data.x_test)
    # train + test files: taken as they are
    write_table(tmp_path / "a.csv", rows=30, seed=1)
    write_table(tmp_path / "b.csv", rows=10, seed=2)
    pair = parse_options("csv", {"train_file": str(tmp_path / "a.csv"),
                                 "test_file": str(tmp_path / "b.csv"), "label_column": "kind",
                                 "drop_columns": ["id", "note"]})
    two = load_dataset("csv", None, options=pair)
    assert (len(two.y_train), len(two.y_test)) == (30, 10)


def test_csv_bad_tables_are_one_line_errors(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.csv", rows=40)
    lines = path.read_text().splitlines()

    def fails(text: str | None, message: str, **options: Any) -> None:
        if text is not None:
            path.write_text(text)
        with pytest.raises(DataError, match=message) as exc:
            load_dataset("csv", None, options=_csv(tmp_path, **options))
        assert "\n" not in str(exc.value)

    fails(None, "no column 'nope'", label_column="nope")
    fails(None, r"column 'note': non-numeric feature 'row \d+'", drop_columns=["id"])
    fails(None, "no column 'gone'", drop_columns=["gone"])
    fails("", "empty file")
    fails(lines[0] + "\n", "no data rows")
    fails("\n".join(lines[:2]) + "\n", "too few rows")
    fails("\n".join([*lines[:5], lines[5] + ",extra"]) + "\n", "t.csv:6: 9 fields")
    only_test = [*lines[:20], lines[20].rsplit(",", 1)[0] + ",k9"]
    fails("\n".join(only_test) + "\n", "class 'k9' of column 'kind' is in the test rows only",
          test_fraction=0.05, seed=_seed_putting_last_row_in_test(20, 0.05))
    one_class = [lines[0]] + [ln.rsplit(",", 1)[0] + ",k0" for ln in lines[1:]]
    fails("\n".join(one_class) + "\n", "one class")
    (tmp_path / "t.csv").unlink()
    fails(None, "file not found")


def _seed_putting_last_row_in_test(n: int, fraction: float) -> int:
    n_test = max(1, round(n * fraction))
    return next(s for s in range(1000)
                if n - 1 in np.random.default_rng(s).permutation(n)[:n_test])


def test_grid_loader_split_and_checks(tmp_path: Path) -> None:
    path = write_grid(tmp_path)
    data = load_dataset("grid", tmp_path)
    assert data.x_train.shape == (8000, 12) and data.x_test.shape == (2000, 12)
    assert data.classes == ("stable", "unstable")
    # the first 80% train, the last 20% test, in file order (the original's split)
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(12))
    mean, std = raw[:8000].mean(0), raw[:8000].std(0)
    assert torch.allclose(data.x_test[-1].double(), torch.as_tensor((raw[-1] - mean) / std),
                          atol=1e-5)
    text = path.read_text()
    lines = text.splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="9999 data rows, expected 10000"):
        load_dataset("grid", tmp_path)
    path.write_text(text.replace(",stab,", ",stability,", 1))
    with pytest.raises(DataError, match="not the UCI grid stability file"):
        load_dataset("grid", tmp_path)
    path.write_text(text.replace('"stable"', '"maybe"', 1))
    with pytest.raises(DataError, match='unknown class \'maybe\''):
        load_dataset("grid", tmp_path)
    path.unlink()
    with pytest.raises(DataError, match="drosweep data fetch grid"):
        load_dataset("grid", tmp_path)


def test_data_fetch_grid_verifies_before_installing(tmp_path: Path, capsys: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import trainers.datasets.grid as grid
    from trainers.datasets import install

    blob = write_grid(tmp_path / "src").read_bytes()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr(GRID_FILE, blob)
    served = [zipped.getvalue()]

    class Response(io.BytesIO):
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(install.urllib.request, "urlopen",
                        lambda url, timeout: Response(served[0]))
    dest = tmp_path / "dest"
    assert main(["data", "fetch", "grid", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"verified (8000 train / 2000 test rows, 2 classes) in {dest}" in out
    assert (dest / GRID_FILE).read_bytes() == blob
    assert main(["data", "ensure", "grid", "--dest", str(dest)]) == 0
    assert "found" in capsys.readouterr().out
    # a truncated download is refused and nothing is installed
    served[0] = b"\n".join(blob.splitlines()[:-3])
    assert main(["data", "fetch", "grid", "--dest", str(tmp_path / "other")]) == 2
    assert "9997 data rows" in capsys.readouterr().err
    assert not (tmp_path / "other" / GRID_FILE).exists()
    # a pinned checksum, when there is one, is enforced
    monkeypatch.setattr(grid, "GRID_SHA256", "0" * 64)
    with pytest.raises(DataError, match="sha256"):
        install_grid(blob, tmp_path / "third")
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert "drosweep data fetch grid" in listing and listing.startswith("avila")


def test_submit_refuses_missing_or_bad_data_before_writing(tmp_path: Path, capsys: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cpu = {"gpus_per_node": 0, "gpus_per_task": 0, "device": "cpu"}
    f = write_study(tmp_path, file="s.toml", **D, dataset="grid", data_dir=str(tmp_path / "g"),
                    cluster=cpu)
    assert main(["plan", str(f)]) == 0   # a preview: it says what submit will refuse
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"data: {f}: data set 'grid' not found in {tmp_path / 'g'}")
    assert out[-1].endswith("run `drosweep data fetch grid` (submit refuses this)")
    assert main(["submit", str(f), "--executor", "local"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drosweep data fetch grid" in err
    write_table(tmp_path / "t.csv")
    f = write_study(tmp_path, file="s.toml", **D, dataset="csv",
                    data={**KIND, "drop_columns": ["id"]}, cluster=cpu)
    assert main(["submit", str(f), "--executor", "local"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "non-numeric feature" in err
    assert not (tmp_path / "root").exists()


def test_mnist_loader_resizes_and_checks(tmp_path: Path) -> None:
    from trainers.datasets.mnist import resize_14

    write_mnist(tmp_path)
    data = load_dataset("mnist", tmp_path)
    assert data.x_train.shape == (60000, 196) and data.x_test.shape == (10000, 196)
    assert data.classes == tuple("0123456789") and data.n_classes == 10
    assert float(data.x_train.min()) >= 0 and float(data.x_train.max()) == 1.0
    # the fixed resize: the mean of each 2x2 block
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 0, 0], image[0, 2:4, 2:4], image[0, 27, 27] = 255, 255, 51
    small = resize_14(image).reshape(14, 14)
    assert small[0, 0] == 0.25 and small[1, 1] == 1.0 and small[13, 13] == 0.05
    assert small.sum() == pytest.approx(1.3)
    # a truncated or foreign file is named
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-10]))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: 9990 data bytes"):
        load_dataset("mnist", tmp_path)
    labels.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_dataset("mnist", tmp_path)
    labels.unlink()
    with pytest.raises(DataError, match="drosweep data fetch mnist"):
        load_dataset("mnist", tmp_path)


def test_data_fetch_mnist_checks_the_reference_sha256(tmp_path: Path, capsys: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    import trainers.datasets.mnist as mnist

    blobs = write_mnist(tmp_path / "src")
    asked: list[str] = []

    def urlopen(url: str, timeout: float) -> io.BytesIO:
        asked.append(url)
        if url.startswith(mnist.MNIST_MIRRORS[0]):
            raise mnist.urllib.error.URLError("mirror down")
        return io.BytesIO(blobs[url.rsplit("/", 1)[-1]])

    monkeypatch.setattr(mnist.urllib.request, "urlopen", urlopen)
    dest = tmp_path / "dest"
    # these are not the reference files: refused on their checksum, nothing installed
    assert main(["data", "fetch", "mnist", "--dest", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "sha256" in err and mnist.MNIST_SHA256["train-images-idx3-ubyte.gz"] in err
    assert not dest.exists() or not any(dest.iterdir())
    # with their checksums as the reference, the same path installs and verifies them
    monkeypatch.setattr(mnist, "MNIST_SHA256",
                        {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()})
    assert main(["data", "fetch", "mnist", "--dest", str(dest)]) == 0
    assert "MNIST data verified (60000 train / 10000 test rows, 10 classes)" in \
        capsys.readouterr().out
    assert sorted(p.name for p in dest.iterdir()) == sorted(blobs)
    assert asked[1].startswith(mnist.MNIST_MIRRORS[1])   # the second mirror after the first
