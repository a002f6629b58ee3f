"""Which host port each workshop service takes: all of them planned from ``REGLAB_PORT``.

A learner sets one port (``REGLAB_PORT``, default 5000: the registry, or the swarm's front that
stands in for it in notebook 09); every companion takes a fixed, distinct offset from it, so
that two services never default to the same port and a learner who moves the registry moves
them all. This module is the one place those offsets are written; everything else asks it.

======================= ======= ==========================================================
service                 offset  default
======================= ======= ==========================================================
registry (swarm front)  0       5000
token server            1       5001 (the token stage's ``NAME-token``)
mirror                  2       5002 (``reglab up mirror``, notebook 06)
copy                    3       5003 (notebook 06's second registry, filled by skopeo sync)
swarm front statistics  4       5004 (notebook 09)
events listener         5       5005 (``reglab listen``, notebook 07)
signature gate          6       5006 (``reglab up local --require-signed``, notebook 12)
======================= ======= ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

#: Offsets from the registry's port. Distinct by construction: a unit test checks it.
REGISTRY = 0
TOKEN_SERVER = 1
MIRROR = 2
COPY = 3
SWARM_STATS = 4
LISTENER = 5
GATE = 6

OFFSETS = {
    "registry": REGISTRY,
    "token server": TOKEN_SERVER,
    "mirror": MIRROR,
    "copy": COPY,
    "swarm front statistics": SWARM_STATS,
    "events listener": LISTENER,
    "signature gate": GATE,
}

_HIGHEST = 65535


def companion(registry_port: int, offset: int) -> int:
    """The port ``offset`` above the registry's; below it when that would pass 65535 (a
    registry on one of the last ports still gets distinct companions)."""
    port = registry_port + offset
    return port if port <= _HIGHEST else registry_port - offset


@dataclass(frozen=True)
class Ports:
    """Every service's port for one registry port: ``Ports(5000).mirror == 5002``."""

    registry: int

    @property
    def token_server(self) -> int:
        return companion(self.registry, TOKEN_SERVER)

    @property
    def mirror(self) -> int:
        return companion(self.registry, MIRROR)

    @property
    def copy(self) -> int:
        return companion(self.registry, COPY)

    @property
    def swarm_stats(self) -> int:
        return companion(self.registry, SWARM_STATS)

    @property
    def listener(self) -> int:
        return companion(self.registry, LISTENER)

    @property
    def gate(self) -> int:
        return companion(self.registry, GATE)

    def all(self) -> dict[str, int]:
        """Service name to port, for every service (the README's table, a preflight)."""
        return {name: companion(self.registry, offset) for name, offset in OFFSETS.items()}
