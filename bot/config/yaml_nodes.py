"""The policy YAML as a tree of nodes that remember their line, and words for those nodes.

The YAML is composed, not constructed, so every node keeps its position: a problem can then
name the line that needs fixing, and describe what was found there in plain words.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.config.durations import shorten
from bot.errors import ConfigError

YAML_TAG = "tag:yaml.org,2002:"
NULL_TAG = YAML_TAG + "null"
BOOL_TAG = YAML_TAG + "bool"
INT_TAG = YAML_TAG + "int"
FLOAT_TAG = YAML_TAG + "float"
MERGE_TAG = YAML_TAG + "merge"


def compose(text: str, source: str) -> Node | None:
    """YAML text to a node tree; any YAML failure becomes a located ``ConfigError``."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        if mark is not None and text[mark.index : mark.index + 1] == "\t":
            # PyYAML only says "found character '\t' that cannot start any token".
            raise ConfigError(
                [f"{source}:{line}: tabs are not allowed in YAML; indent with spaces"]
            ) from exc
        why = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            why = f"{exc.problem} ({exc.context}{where})"
        raise ConfigError([f"{source}:{line}: YAML syntax error: {why}"]) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        char = exc.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        raise ConfigError(
            [f"{source}:{line}: YAML syntax error: special character {shown} is not allowed"]
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}:1: YAML syntax error: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError([f"{source}:1: YAML syntax error: nested too deeply"]) from exc


def line_of(node: Node) -> int:
    """The 1-based line a node starts on, as editors number them."""
    return node.start_mark.line + 1


def join(parent: str, child: str) -> str:
    """The dotted key of ``child`` inside ``parent`` ("" is the top level)."""
    return f"{parent}.{child}" if parent else child


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def empty(at: Node) -> Node:
    """A stand-in for an absent optional section: an empty value located at ``at``."""
    return ScalarNode(NULL_TAG, "", at.start_mark, at.start_mark)


def kind(node: Node) -> str:
    """What a node is, in words, for "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL_TAG or node.value == "":
        return "an empty value"
    value = shorten(str(node.value))
    if node.tag in (INT_TAG, FLOAT_TAG):
        return f"the number {value}"
    if node.tag == BOOL_TAG:
        return f"the boolean {value}"
    return f"the string {value!r}"


def close_name(name: str, known: Iterable[str]) -> str | None:
    """The known name that ``name`` most likely misspells ("alcie" for "alice"), if any."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return close[0] if close else None


def suggest(name: str, known: Iterable[str], what: str) -> str:
    """ "(did you mean 'x'?)" when a close name exists, else the list of valid names."""
    choices = list(known)
    close = close_name(name, choices)
    if close is not None:
        return f"(did you mean {close!r}?)"
    if not choices:
        return f"(there are no {what})"
    return f"({what}: {', '.join(choices)})"
