"""`drosweep --help` says what the tool does, not how the CLI is built."""

from __future__ import annotations

import pytest

from drosweep.cli import main


def test_help_opens_with_what_the_tool_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    first = text.split("\n\n")[1]
    assert first.startswith("Plan, run, resume, reduce and plot the smoothed robust pointwise")
    assert "drosweep demo" in text and "Subcommands only parse" not in text
