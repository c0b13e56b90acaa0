"""What the policy loader tests share: a small valid file to edit, and a way to see the
problems reported for an edited one."""

from __future__ import annotations

import pytest

from bot.config import load_policy_text
from bot.errors import ConfigError

# Six lines every error test builds on, so the expected line numbers can be read off.
BASE = """\
version: 1
from_numbers:
  main: "+17137157533"
contacts:
  alice: "+447700900123"
  bob: "+447700900456"
"""


def problems_of(text: str) -> list[str]:
    """The problems load_policy_text reports for ``text`` (it must refuse it)."""
    with pytest.raises(ConfigError) as caught:
        load_policy_text(text, "t.yaml")
    return caught.value.problems
