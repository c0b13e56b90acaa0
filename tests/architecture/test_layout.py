"""The layout rules a newcomer relies on, checked so they stay true.

- no import cycle among ``bot`` modules (deferred imports inside functions count too);
- no module over 500 lines;
- no function over 60 lines unless its docstring says why ("Long because ...");
- no reference to issue numbers or to documents outside the repository.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bot"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
LONG_REASON = "Long because"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``bot`` modules that ``name`` imports, resolving ``from pkg import module``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {target for target in found if target in known and target != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    mods = modules()
    known = set(mods)
    # A package's __init__ re-exporting its own modules is not a cycle of the architecture.
    graph = {
        name: {t for t in imports_of(name, path, known) if not t.startswith(name + ".")}
        for name, path in mods.items()
    }
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_the_limit() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_no_long_function_without_a_reason() -> None:
    too_long: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and LONG_REASON not in (ast.get_docstring(node) or ""):
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert not too_long, "functions over the limit without a reason:\n" + "\n".join(too_long)


OUTSIDE_REFERENCES = re.compile(
    r"\bSPEC\b|SPEC\.md|\.\./shared|\bissues? #?\d+\b|\(#\d+\)|/work/", re.IGNORECASE
)


def test_nothing_points_outside_the_repository() -> None:
    here = Path(__file__).resolve()
    files = [
        p
        for folder in ("bot", "tests", "docs", "bench", "config")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in {".py", ".md", ".yaml", ".yml", ".example"} and p != here
    ]
    files += [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    hits = [
        f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:80]}"
        for path in files
        if path.exists()
        for lineno, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE_REFERENCES.search(line)
    ]
    assert not hits, "references outside the repository:\n" + "\n".join(hits)
