"""What runs: a plain summary of reglab's registry containers, for ``reglab status`` and the
status panel, and what a running registry says of itself (its working folder), so that the
commands acting on it read it instead of guessing or asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from reglab.base.errors import RegistryError, docker_errors
from reglab.base.labels import OWNER_LABEL, STAGE_LABEL, is_owned
from reglab.engine.connection import connect
from reglab.engine.oneoff import run_once
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
    #: The working folder it was started with, read from its bind mounts ("" when it has none:
    #: the local stage, or a registry whose data is in a named volume and has no certificate).
    workdir: str = ""
    #: What the registry program says it is (``registry --version``): "3.1.2", "2.8.2+ds1"
    #: ("" when it is not running).
    version: str = ""

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
            workdir=str(workdir_of(container) or ""),
            version=running_version(container) if container.status == "running" else "",
        )


def parse_version(output: str) -> str:
    """The release in ``registry --version``'s line: ``registry github.com/distribution/
    distribution/v3 v3.1.2`` gives "3.1.2", Debian's 2.8 "2.8.2+ds1"."""
    words = output.split()
    return words[-1].removeprefix("v") if words else ""


def running_version(container: Container) -> str:
    """What the registry program in a running container says it is ("" if it cannot say)."""
    try:
        code, output = container.exec_run(["/bin/registry", "--version"])
    except docker.errors.APIError:
        return ""
    return parse_version(output.decode(errors="replace")) if code == 0 else ""


def image_version(engine: docker.DockerClient, image: str) -> str:
    """What the registry program in ``image`` says it is, from a one-off container (removed
    with the anonymous volume the image declares)."""
    output = run_once(
        engine,
        image,
        ["--version"],
        what=f"cannot run {image} --version",
        error=RegistryError,
        entrypoint=["/bin/registry"],
    )
    return parse_version(output)


#: Where a registry container mounts the files of its working folder, and how far below the
#: folder each source sits (reglab.registry.workdir's layout): registry-data/, certs/domain.crt,
#: certs/ca.crt (token stage), auth/.
_MOUNTED_FROM_WORKDIR = {
    "/var/lib/registry": 1,
    "/certs/domain.crt": 2,
    "/certs/ca.crt": 2,
    "/auth": 1,
}


def workdir_of(container: Container) -> Path | None:
    """The working folder a registry container was started with, read from its bind mounts
    (the first that says: its data folder, else its certificate, else its users), or None."""
    mounts = {
        m.get("Destination"): m
        for m in (container.attrs.get("Mounts") or [])
        if m.get("Type") == "bind"
    }
    for destination, depth in _MOUNTED_FROM_WORKDIR.items():
        mount = mounts.get(destination)
        if mount and mount.get("Source"):
            return Path(mount["Source"]).parents[depth - 1]
    return None


def registry_workdir(engine: docker.DockerClient, name: str) -> Path | None:
    """The working folder of reglab's container ``name``, read from it; None when there is no
    such container, it is not reglab's, or it mounts nothing from a working folder."""
    with docker_errors(f"cannot inspect container {name}"):
        try:
            container = engine.containers.get(name)
        except docker.errors.NotFound:
            return None
    return workdir_of(container) if is_owned(container.labels) else None


def owned_registries(engine: docker.DockerClient | None = None) -> list[RegistryStatus]:
    """Every registry container reglab created, running or not (not the helpers: a small
    disk's keeper, a token server)."""
    engine = engine or connect()
    with docker_errors("cannot list containers"):
        found = engine.containers.list(
            all=True, filters={"label": OWNER_LABEL}, ignore_removed=True
        )
    return [RegistryStatus.of(c) for c in found if STAGE_LABEL in (c.labels or {})]
