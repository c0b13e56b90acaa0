"""The layers of ``bot``, checked so a newcomer can trust them.

Each top-level part of the package (a subpackage such as ``bot.sending``, or a root module
such as ``bot.metrics``) has a rank; a part may import only parts of its own rank or lower.
Every import counts: deferred ones inside functions and ``TYPE_CHECKING`` ones too, since
both are dependencies a reader must follow. Intended exceptions go in ``ALLOWED``, each
with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture.test_layout import find_cycle, imports_of, modules

# Lowest first. Same-rank parts may import each other (the cycle test still applies).
RANKS: dict[str, int] = {
    "errors": 0,  # the one error hierarchy: imports nothing of ours
    "core": 1,  # pure policy, no I/O
    "tasks": 1,  # the task runner: asyncio only, used by the send path and Slack
    "logs": 2,  # log scrubbing, masks numbers with core.phone
    "config": 2,  # the YAML policy file into core.model
    "settings": 2,  # environment variables; logs settings problems
    "store": 3,  # durable state
    "sms": 4,  # the 2Chat client: core and errors only (checked below too)
    "metrics": 5,  # Prometheus metrics, naming 2Chat's paths and failure reasons
    "sending": 5,  # the send path and the reply poller: store, sms, never Slack
    "audit": 5,  # the audit export: config and store
    "slack": 6,  # listeners, rendering and Slack transport, on top of the send path
    "health": 5,  # readiness: asks the store; Slack's and 2Chat's checks are passed in
    "app": 7,  # the composition root
    "server": 8,  # runs the app
    "cli": 9,  # the command line, starts the server
    "__main__": 10,  # ``python -m bot``
    "bot": 10,  # the package itself
}

# (importing part, imported part): why. Empty: no exception is intended today.
ALLOWED: dict[tuple[str, str], str] = {}

SMS_MAY_IMPORT = {"sms", "core", "errors"}


def part_of(module: str) -> str:
    """``bot.sending.sends`` -> ``sending``; ``bot.metrics`` -> ``metrics``; ``bot``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def part_imports() -> dict[str, dict[str, set[str]]]:
    """Each part's imports of other parts, with the modules that make each one."""
    mods = modules()
    known = set(mods)
    graph: dict[str, dict[str, set[str]]] = {}
    for name, path in mods.items():
        edges = graph.setdefault(part_of(name), {})
        for target in imports_of(name, path, known):
            if part_of(target) != part_of(name):
                edges.setdefault(part_of(target), set()).add(name)
    return graph


def upward_imports(graph: dict[str, dict[str, set[str]]]) -> list[str]:
    """Imports of a higher-ranked part, not allowed; an unranked part is one too."""
    wrong = []
    for part, edges in sorted(graph.items()):
        for target, by in sorted(edges.items()):
            if (part, target) in ALLOWED:
                continue
            if part not in RANKS or target not in RANKS:
                wrong.append(f"{part} -> {target}: unranked (give it a rank in RANKS)")
            elif RANKS[target] > RANKS[part]:
                wrong.append(
                    f"{part} (rank {RANKS[part]}) imports {target} "
                    f"(rank {RANKS[target]}) in {', '.join(sorted(by))}"
                )
    return wrong


def test_no_part_imports_a_higher_one() -> None:
    wrong = upward_imports(part_imports())
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_layer_check_sees_a_deferred_import_upwards(tmp_path: Path) -> None:
    """A TYPE_CHECKING or in-function import of a higher part is caught."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.slack.render import untrusted\n"
        "def later() -> None:\n    import bot.app\n"
    )
    module = tmp_path / "probe.py"
    module.write_text(source)
    found = imports_of("bot.sending.probe", module, {"bot.slack.render", "bot.app"})
    assert found == {"bot.slack.render", "bot.app"}
    graph = {"sending": {part_of(t): {"bot.sending.probe"} for t in found}}
    assert len(upward_imports(graph)) == 2


def test_the_parts_import_one_another_without_a_cycle() -> None:
    graph = {part: set(edges) for part, edges in part_imports().items()}
    for edges in list(graph.values()):
        for target in edges:
            graph.setdefault(target, set())
    cycle = find_cycle(graph)
    assert cycle is None, f"a cycle between parts: {' -> '.join(cycle or [])}"


def test_sms_imports_only_core_and_errors() -> None:
    """The 2Chat adapter knows nothing of the store, the send path or Slack: whatever
    reacts to 2Chat calls it, through interfaces of its own."""
    imported = set(part_imports().get("sms", {}))
    assert imported <= SMS_MAY_IMPORT, f"bot.sms imports {sorted(imported - SMS_MAY_IMPORT)}"


def test_no_slack_module_reaches_the_store() -> None:
    """Listeners ask the send side (``bot.sending.queries``, the workflow); they neither
    import ``bot.store`` nor call a ``.store`` attribute."""
    reaching = []
    for name, path in sorted(modules().items()):
        if part_of(name) != "slack":
            continue
        tree = ast.parse(path.read_text(), str(path))
        if any(part_of(t) == "store" for t in imports_of(name, path, set(modules()))):
            reaching.append(f"{name} imports bot.store")
        reaching += [
            f"{name}:{node.lineno} uses .store"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "store"
        ]
    assert not reaching, "\n".join(reaching)


def test_every_part_has_a_rank() -> None:
    parts = {part_of(name) for name in modules()}
    assert parts <= set(RANKS), f"parts with no rank: {sorted(parts - set(RANKS))}"
