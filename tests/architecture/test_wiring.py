"""One composition root: ``bot/app.py`` builds every long-lived part, each complete.

Two things are checked mechanically. A class the root constructs is constructed nowhere
else in ``bot`` (so no part builds its own collaborators); and neither the root nor the
runtime that starts the parts (``bot/server.py``) assigns to another object's attribute,
the way a callback used to be set on a part after it was built.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture.test_layout import modules

ROOT = "bot.app"
# Modules that receive the built parts: they start, serve and stop them, never rewire them.
NO_REWIRING = ("bot.app", "bot.server", "bot.cli")


def constructed(name: str, path: Path) -> set[str]:
    """Classes of ``bot`` called by name in the module (``module.Class``), resolved
    through its ``from bot... import`` lines and its own class definitions."""
    tree = ast.parse(path.read_text(), str(path))
    known = {
        node.name: f"{name}.{node.name}" for node in tree.body if isinstance(node, ast.ClassDef)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot"):
            for alias in node.names:
                known[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return {
        known[node.func.id]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in known
        and node.func.id[:1].isupper()
    }


def foreign_assignments(path: Path) -> list[str]:
    """``x.attr = ...`` where ``x`` is not ``self``: lines that change another object."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        flat = [t for target in targets for t in getattr(target, "elts", [target])]
        found += [
            f"{path}:{node.lineno} assigns {ast.unparse(target)}"
            for target in flat
            if isinstance(target, ast.Attribute)
            and not (isinstance(target.value, ast.Name) and target.value.id in ("self", "cls"))
        ]
    return found


def test_parts_are_built_only_in_the_composition_root() -> None:
    mods = modules()
    built_by_root = constructed(ROOT, mods[ROOT])
    assert {"bot.sending.workflow.Workflow", "bot.health.Readiness"} <= built_by_root
    elsewhere = [
        f"{name} builds {cls.rsplit('.', 1)[1]}"
        for name, path in sorted(mods.items())
        if name != ROOT
        for cls in sorted(constructed(name, path) & built_by_root)
    ]
    assert not elsewhere, "parts built outside bot/app.py:\n" + "\n".join(elsewhere)


def test_no_part_is_changed_after_construction() -> None:
    mods = modules()
    found = [line for name in NO_REWIRING for line in foreign_assignments(mods[name])]
    assert not found, "\n".join(found)


def test_the_wiring_checks_see_what_they_forbid(tmp_path: Path) -> None:
    """Setting a part's callback from outside, or building a root's part elsewhere, is seen."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from bot.sending.workflow import Workflow\n"
        "def run(parts):\n"
        "    parts.pacer.relearn = print\n"
        "    self, parts.readiness.socket_problem = 1, 2\n"
        "    return Workflow()\n"
    )
    assert len(foreign_assignments(probe)) == 2
    assert constructed("bot.probe", probe) == {"bot.sending.workflow.Workflow"}
