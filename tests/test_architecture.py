"""The import rules of docs/ARCHITECTURE.md hold: every import between the project's packages is
one that its table allows (read from the document itself, so the map and the test cannot drift),
and no two modules import each other, directly or around a loop (every import counts: at the top,
inside functions and under `TYPE_CHECKING`)."""

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
        elif (literal := dynamic_import(node)) is not None:
            found.append((node.lineno, literal))
    return found


def dynamic_import(node: ast.AST) -> str | None:
    """The literal name (or prefix) of an `import_module("...")` / `__import__` call."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0]
    if isinstance(first, ast.JoinedStr) and first.values:
        first = first.values[0]
    if name in ("import_module", "__import__") and isinstance(first, ast.Constant) \
            and isinstance(first.value, str):
        return first.value
    return None


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


Graph = dict[str, set[str]]


def module_name(path: Path, root: Path = REPO) -> str:
    """`a/b/c.py` -> `a.b.c`, `a/b/__init__.py` -> `a.b`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, name: str, modules: set[str], is_package: bool = False
                     ) -> set[str]:
    """The modules of `modules` that module `name` imports, anywhere in it: `import a.b`,
    `from a import b` (the module `a.b` where there is one, else `a`), relative imports and
    `import_module` with a literal name (or the package of a literal prefix)."""
    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if is_package else name.rpartition(".")[0]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {known(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                          else known(base))
        elif (literal := dynamic_import(node)) is not None:
            found.add(known(literal.rstrip(".")))
    return {m for m in found if m is not None and m != name}


def module_graph(packages: list[str] | None = None, root: Path = REPO) -> Graph:
    """Module -> the project's modules it imports, over every module of the packages."""
    files = {module_name(path, root): path
             for package in (packages or sorted(rules_from(DOC.read_text(encoding="utf-8"))))
             for path in sorted((root / package).rglob("*.py"))}
    modules = set(files)
    return {name: imported_modules(path.read_text(encoding="utf-8"), name, modules,
                                   path.name == "__init__.py")
            for name, path in files.items()}


def import_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (each a set of modules that import
    one another around a loop), sorted; Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return sorted(groups)


def test_no_two_modules_import_each_other() -> None:
    cycles = import_cycles(module_graph())
    assert not cycles, "modules that import each other (around a loop):\n" + "\n".join(
        "  " + ", ".join(group) for group in cycles)


@pytest.mark.parametrize(("files", "cycles"), [
    ({"a/__init__.py": "", "a/x.py": "from a.y import f\n", "a/y.py": "def f():\n    import a.x\n"},
     [["a.x", "a.y"]]),
    ({"a/__init__.py": "", "a/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
      "    from a import z\n", "a/y.py": "from . import x\n", "a/z.py": "from a import y\n"},
     [["a.x", "a.y", "a.z"]]),
    # a package's __init__ re-exporting its modules is no loop: they import their siblings
    ({"a/__init__.py": "from a.x import f\nfrom a.y import g\n", "a/x.py": "from a.y import g\n",
      "a/y.py": "import os\n"}, []),
    ({"a/__init__.py": "", "a/x.py": "from a.y import g\n", "a/y.py": "import b.z\n",
      "b/__init__.py": "", "b/z.py": "from a import x\n"}, [["a.x", "a.y", "b.z"]]),
])
def test_the_check_finds_a_cycle(tmp_path: Path, files: dict[str, str], cycles: list[list[str]]
                                 ) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    packages = sorted({name.split("/")[0] for name in files})
    assert import_cycles(module_graph(packages, tmp_path)) == cycles


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


def test_tests_mirror_the_packages() -> None:
    """Unit tests live in tests/unit/<package>/ (the package whose behaviour they test), so a
    change's tests are found beside its package's; only this map's own test stays at the top."""
    tests = REPO / "tests"
    top = sorted(p.name for p in tests.glob("test_*.py"))
    assert top == ["test_architecture.py"], top
    folders = {p.name for p in (tests / "unit").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= packaged(), folders - packaged()
    assert all(any(d.glob("test_*.py")) for d in (tests / "unit").iterdir() if d.is_dir()
               and d.name != "__pycache__")
