"""`--json` of the commands that print a table: one JSON object on stdout, nothing else there."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plots import RenderResult
    from reduce import ReduceSummary


def add_json_argument(p: argparse.ArgumentParser, text: str = "print one JSON object") -> None:
    p.add_argument("--json", action="store_true", help=text)


def print_json(body: dict[str, Any]) -> None:
    print(json.dumps(body, indent=2))


def summary_json(summary: ReduceSummary) -> dict[str, Any]:
    """`reduce --json`: what `reduce` prints, as fields."""
    return {"parquet": str(summary.parquet), "csv": str(summary.csv), "rows": summary.rows,
            "evaluated": summary.evaluated, "reused": summary.reused,
            "errors": [{"key": key, "reason": reason} for key, reason in summary.errors],
            "failed_training": list(summary.failed_training), "missing": list(summary.missing),
            "failed": list(summary.failed), "wall_s": summary.wall_s}


def render_json(result: RenderResult) -> dict[str, Any]:
    """`report --json`: the claim checks, the report and the figure files."""
    return {"claims": [{"verdict": c.verdict.value, "text": c.text} for c in result.claims],
            "report": str(result.report) if result.report is not None else None,
            "figures": [str(f) for f in result.figures]}
