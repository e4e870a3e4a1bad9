"""The import rules of docs/ARCHITECTURE.md hold: every import between the project's packages is
one that its table allows (read from the document itself, so the map and the test cannot drift)."""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"
ROW = re.compile(r"^\| `(\w+)/` \| .+ \| (.+) \|$")

Rules = dict[str, frozenset[str]]


def rules_from(text: str) -> Rules:
    """Package -> the packages it may import, from the rows of the document's table."""
    rules: Rules = {}
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if match:
            cell = match.group(2).strip()
            allowed = () if cell == "—" else (name.strip() for name in cell.split(","))
            rules[match.group(1)] = frozenset(allowed)
    return rules


def imported_names(source: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a module: at the top, inside functions and
    `if TYPE_CHECKING:` blocks, and `import_module("...")` with a literal name or prefix."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if isinstance(first, ast.JoinedStr) and first.values:
                first = first.values[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def forbidden(package: str, source: str, rules: Rules, where: str = "<source>") -> list[str]:
    """The imports of one module of `package` that the rules do not allow."""
    out = []
    for line, module in imported_names(source):
        top = module.split(".")[0]
        if top in rules and top != package and top not in rules[package]:
            out.append(f"{where}:{line}: {package} -> {module} (allowed: "
                       f"{', '.join(sorted(rules[package])) or 'none'})")
    return out


def packaged() -> set[str]:
    """The top-level packages that setup.cfg installs."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    include = config["options.packages.find"]["include"].split()
    return {name for name in include if "." not in name and not name.endswith("*")}


def test_the_document_has_a_rule_for_every_installed_package() -> None:
    rules = rules_from(DOC.read_text(encoding="utf-8"))
    assert set(rules) == packaged(), "docs/ARCHITECTURE.md's table and setup.cfg disagree"
    for package, allowed in rules.items():
        assert allowed <= set(rules), f"{package} may import an unknown package: {allowed}"


def test_every_import_between_packages_is_allowed() -> None:
    rules = rules_from(DOC.read_text(encoding="utf-8"))
    problems: list[str] = []
    for package in rules:
        files = sorted((REPO / package).rglob("*.py"))
        assert files, f"no modules in {package}/"
        for path in files:
            problems += forbidden(package, path.read_text(encoding="utf-8"), rules,
                                  str(path.relative_to(REPO)))
    assert not problems, "imports that docs/ARCHITECTURE.md does not allow:\n" + "\n".join(problems)


RULES = rules_from("""
| `cli/` | the CLI | core, base |
| `core/` | the middle | base |
| `base/` | the bottom | — |
""")


@pytest.mark.parametrize(("package", "source", "bad"), [
    ("base", "from core.x import y\n", ["core.x"]),                     # an arrow back up
    ("base", "def f():\n    import cli.main\n", ["cli.main"]),         # a lazy one
    ("core", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cli import z\n",
     ["cli"]),
    ("core", "import importlib\nimportlib.import_module(f'cli.{name}')\n", ["cli."]),
    ("core", "from base import b\nfrom . import sibling\nimport os\nimport core.x\n", []),
    ("cli", "import core\nfrom base.q import r\nimport torch\n", []),
])
def test_the_check_finds_a_forbidden_arrow(package: str, source: str, bad: list[str]) -> None:
    problems = forbidden(package, source, RULES)
    assert [p.split(" -> ")[1].split(" ")[0] for p in problems] == bad, problems


def test_the_table_is_read_as_written() -> None:
    assert {"cli": {"core", "base"}, "core": {"base"}, "base": frozenset()} == RULES
