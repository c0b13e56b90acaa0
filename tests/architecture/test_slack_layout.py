"""``bot/slack`` keeps its three parts apart: transport knows nothing of the listeners or
the rendering, rendering knows nothing of either, and every listener module registers."""

from __future__ import annotations

import ast

from tests.architecture.test_layout import imports_of, modules

SLACK = "bot.slack"
NOT_SURFACES = {"bot.slack.listeners.deps", "bot.slack.listeners.forms"}


def imports_across(graph: dict[str, set[str]], part: str, forbidden: set[str]) -> list[str]:
    """``module -> target`` for each import from ``part`` into a ``forbidden`` part."""
    return sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        if name.startswith(f"{SLACK}.{part}.")
        for target in targets
        if any(target.startswith(f"{SLACK}.{other}") for other in forbidden)
    )


def slack_graph() -> dict[str, set[str]]:
    mods = modules()
    return {
        name: imports_of(name, path, set(mods))
        for name, path in mods.items()
        if name.startswith(SLACK)
    }


def test_transport_imports_no_listener_and_no_rendering() -> None:
    assert imports_across(slack_graph(), "transport", {"listeners", "render", "bolt_app"}) == []


def test_rendering_imports_no_listener_and_no_transport() -> None:
    assert imports_across(slack_graph(), "render", {"listeners", "transport", "bolt_app"}) == []


def test_a_forbidden_import_is_found() -> None:
    graph = {
        "bot.slack.transport.http": {"bot.slack.listeners.paging", "bot.slack.ids"},
        "bot.slack.listeners.paging": {"bot.slack.transport.redelivery"},
    }
    assert imports_across(graph, "transport", {"listeners"}) == [
        "bot.slack.transport.http -> bot.slack.listeners.paging"
    ]


def test_every_listener_module_registers() -> None:
    listeners = {
        name: path
        for name, path in modules().items()
        if name.startswith(f"{SLACK}.listeners.") and name not in NOT_SURFACES
    }
    without = [
        name
        for name, path in listeners.items()
        if not any(
            isinstance(node, ast.FunctionDef) and node.name == "register"
            for node in ast.parse(path.read_text()).body
        )
    ]
    assert listeners
    assert without == []
