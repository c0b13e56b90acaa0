"""No input, however broken, makes the loader fail with anything but a located ConfigError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import load_policy_text
from bot.errors import ConfigError
from tests.conftest import SHIPPED_CONFIG

SHIPPED_TEXT = SHIPPED_CONFIG.read_text(encoding="utf-8")


def _outcome(text: str) -> str:
    """Loading either succeeds or raises ConfigError; any other exception fails the test."""
    try:
        load_policy_text(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems
        assert all(problem.startswith("fuzz.yaml") for problem in exc.problems)
        return "refused"
    return "loaded"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text_never_crashes(text: str) -> None:
    assert _outcome(text) in ("loaded", "refused")


YAML_BITS = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "-",
        ":",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        "*",
        "&a",
        "*a",
        "!!int",
        "!!bool",
        "~",
        "null",
        "0",
        "-1",
        "true",
        "1h",
        "+44",
        "U0X",
        "C0X",
        "(",
        "\\",
        "#",
        "\t",
        "<<: *a",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_shipped_config_never_crashes(data: st.DataObject) -> None:
    text = SHIPPED_TEXT
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + data.draw(YAML_BITS) + text[end:]
    assert _outcome(text) in ("loaded", "refused")
