"""What runs: a plain summary of reglab's registry containers, for ``reglab status`` and the
status panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker

from reglab.base.errors import docker_errors
from reglab.base.labels import OWNER_LABEL, STAGE_LABEL, is_owned
from reglab.engine.connection import connect
from reglab.registry.config import Stage

Container = Any  # docker.models.containers.Container: docker-py ships no type information


@dataclass(frozen=True)
class RegistryStatus:
    """What ``reglab status`` and the status panel show of one registry container."""

    name: str
    state: str
    stage: str = ""
    ports: tuple[str, ...] = ()
    tls: bool = False
    auth: bool = False
    owned: bool = False

    @classmethod
    def of(cls, container: Container) -> RegistryStatus:
        stage = Stage.parse(container.labels.get(STAGE_LABEL, "local"))
        ports = {b["HostPort"] for bs in (container.ports or {}).values() for b in bs or []}
        return cls(
            name=container.name,
            state=container.status,
            stage=stage.value,
            ports=tuple(sorted(ports)),
            tls=stage.tls,
            auth=stage.auth or stage.token,
            owned=is_owned(container.labels),
        )


def owned_registries(engine: docker.DockerClient | None = None) -> list[RegistryStatus]:
    """Every registry container reglab created, running or not (not the helpers: a small
    disk's keeper, a token server)."""
    engine = engine or connect()
    with docker_errors("cannot list containers"):
        found = engine.containers.list(all=True, filters={"label": OWNER_LABEL})
    return [RegistryStatus.of(c) for c in found if STAGE_LABEL in (c.labels or {})]
