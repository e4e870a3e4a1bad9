"""Small things: file names like the original code's, the command map of the CLI."""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import pytest

from drosweep import cli
from drosweep.cli import main
from drosweep.cmd_train import model_filename


@pytest.mark.parametrize("radius, name", [(1, "eps_1.0_trial_3.pt"), (0.1, "eps_0.1_trial_3.pt"),
                                          (0, "eps_0.0_trial_3.pt"),
                                          (1e-05, "eps_1e-05_trial_3.pt")])
def test_model_filename_is_str_of_float(radius: float, name: str) -> None:
    assert model_filename(radius, 3) == name


def test_every_command_is_in_the_command_map() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS)
    for command, module in cli.COMMANDS.items():
        only = cli.build_parser(command)
        action = next(a for a in only._actions if isinstance(a, argparse._SubParsersAction))
        assert command in action.choices, (command, module)


def test_data_ensure_fetches_only_when_missing(avila_data_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from trainers.datasets import install

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("avila-tr.txt", "avila-ts.txt"):
            archive.write(avila_data_dir / name, f"avila/{name}")
    downloads: list[str] = []

    class Response(io.BytesIO):
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def urlopen(url: str, timeout: float) -> Response:
        downloads.append(url)
        return Response(buffer.getvalue())

    monkeypatch.setattr(install.urllib.request, "urlopen", urlopen)
    dest = tmp_path / "avila"
    assert main(["data", "ensure", "--dest", str(dest)]) == 0
    captured = capsys.readouterr()
    assert "not found" in captured.err and "fetching" in captured.err
    assert f"verified (10430 train / 10437 test rows, 12 classes) in {dest}" in captured.out
    assert (dest / "avila-tr.txt").read_bytes() == (avila_data_dir / "avila-tr.txt").read_bytes()
    assert main(["data", "ensure", "--dest", str(dest)]) == 0
    assert capsys.readouterr().out.strip() == f"Avila data found in {dest}"
    assert len(downloads) == 1

    def offline(url: str, timeout: float) -> Response:
        raise install.urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(install.urllib.request, "urlopen", offline)
    assert main(["data", "ensure", "--dest", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("drosweep data: error: Avila data not found in")
    assert "Name or service not known" in err[-1]
