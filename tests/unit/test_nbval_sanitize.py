"""The replacements nbval applies before comparing notebook outputs (tests/nbval-sanitize.cfg).

nbval pairs a ``regex:`` line with a ``replace:`` line only when text follows ``"replace: "``;
a section it cannot pair is dropped without a word, so each one is counted here.
"""

from __future__ import annotations

import re

from common import SANITIZE
from nbval.plugin import get_sanitize_patterns

from reglab.swarm import StaleBridge


def sanitize(text: str) -> str:
    """Apply the patterns in order, as nbval does."""
    for regex, replace in get_sanitize_patterns(SANITIZE.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_every_section_is_read_by_nbval() -> None:
    config = SANITIZE.read_text()
    sections = re.findall(r"^\[([\w-]+)\]$", config, flags=re.MULTILINE)
    assert len(get_sanitize_patterns(config)) == len(sections), sections


def test_a_stale_bridge_line_is_the_engines_not_the_notebooks() -> None:
    left = "left the swarm reglab made"
    after = "$ docker images"
    assert sanitize(f"{left}\n{StaleBridge()}\n{after}") == f"{left}\n{after}"
    # Only after that result: the same words anywhere else are compared.
    assert str(StaleBridge()) in sanitize(f"something else\n{StaleBridge()}")
