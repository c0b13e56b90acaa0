"""Every public exception lives in ``bot/errors.py``, so a reader finds the whole tree in one
place, and that module imports nothing from ``bot``, so any layer can raise them."""

from __future__ import annotations

import ast
import builtins

from tests.architecture.test_layout import PACKAGE, module_name

ERRORS = PACKAGE / "errors.py"
BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def base_name(base: ast.expr) -> str:
    """``Error`` for ``Error`` and for ``psycopg.Error``."""
    if isinstance(base, ast.Attribute):
        return base.attr
    return base.id if isinstance(base, ast.Name) else ""


def classes_with_bases(sources: dict[str, str]) -> dict[tuple[str, str], set[str]]:
    """(module, class) -> the names of its bases, for every class in ``sources``."""
    found: dict[tuple[str, str], set[str]] = {}
    for module, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                found[(module, node.name)] = {base_name(base) for base in node.bases}
    return found


def exception_classes(sources: dict[str, str]) -> set[tuple[str, str]]:
    """The (module, class) pairs that derive from an exception, following bases by name
    until nothing new is found (a library's ``SomethingError`` counts as an exception)."""
    classes = classes_with_bases(sources)
    exception_names = set(BUILTIN_EXCEPTIONS)
    found: set[tuple[str, str]] = set()
    while True:
        new = {
            key
            for key, bases in classes.items()
            if key not in found
            and any(base in exception_names or base.endswith("Error") for base in bases)
        }
        if not new:
            return found
        found |= new
        exception_names |= {name for _, name in new}


def misplaced_exceptions(sources: dict[str, str]) -> list[str]:
    return sorted(
        f"{module}.{name}"
        for module, name in exception_classes(sources)
        if module != "bot.errors" and not name.startswith("_")
    )


def test_every_public_exception_is_in_errors_module() -> None:
    sources = {module_name(path): path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}
    assert misplaced_exceptions(sources) == []


def test_misplaced_exception_is_found() -> None:
    sources = {
        "bot.errors": "class BridgeError(Exception): ...",
        "bot.store.x": "class Taken(BridgeError): ...\nclass Later(Taken): ...\n"
        "class _Private(Exception): ...\nclass Row: ...",
        "bot.sms.y": "class Refused(httpx.HTTPError): ...",
    }
    assert misplaced_exceptions(sources) == [
        "bot.sms.y.Refused",
        "bot.store.x.Later",
        "bot.store.x.Taken",
    ]


def test_errors_module_imports_nothing_from_bot() -> None:
    tree = ast.parse(ERRORS.read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert [name for name in imported if name and name.split(".")[0] == "bot"] == []
