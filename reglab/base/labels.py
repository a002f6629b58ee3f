"""The one place that says what reglab owns.

Every container, network and volume reglab creates carries :data:`OWNER_LABEL`, and reglab only
ever replaces or removes objects that carry it: a learner's own containers are never touched.
(Like testcontainers' ``create_labels()``: one function writes the rule, one reads it.)
"""

from __future__ import annotations

from collections.abc import Mapping

OWNER_LABEL = "org.reglab.owned"
#: Which stage a registry container runs (``local``, ``persistent``, ``tls``, ``auth``).
STAGE_LABEL = "org.reglab.stage"
#: Marks images reglab built. Not the owner label: containers inherit image labels, and every
#: container started from hello-world would then look like reglab's own.
BUILT_LABEL = "org.reglab.built"


def owner_labels(**extra: str) -> dict[str, str]:
    """The labels of an object reglab creates (``extra`` as ``STAGE_LABEL`` values and such)."""
    return {OWNER_LABEL: "true", **extra}


def is_owned(labels: Mapping[str, str] | None) -> bool:
    """True when an object with these labels was created by reglab."""
    return (labels or {}).get(OWNER_LABEL) == "true"
