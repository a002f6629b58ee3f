"""A small disk for a registry: a size-limited tmpfs volume, to watch a registry fill up.

The engine makes it (``docker volume create`` with tmpfs options): no root, no loop device, and
nothing written on the learner's real disk. A tmpfs lives in memory only while something mounts
it: when the last container using the volume stops, its contents are gone. So a *keeper*
container holds it mounted for as long as the disk is needed, and the registry can restart (as
garbage collection does) without losing its data.
"""

from __future__ import annotations

from dataclasses import dataclass

import docker
import docker.errors

from reglab.base.errors import ConfigError, NotOwned, RegistryError, docker_errors
from reglab.base.labels import OWNER_LABEL, is_owned, owner_labels
from reglab.base.settings import TOOLS_IMAGE
from reglab.engine.oneoff import run_once

#: Where the keeper mounts the disk.
KEEPER_MOUNT = "/disk"
#: busybox sleeps about 68 years: until the keeper is removed.
KEEPER_SLEEP = "2147483647"


@dataclass(frozen=True)
class SmallDisk:
    """A tmpfs volume of ``size_mb`` MiB named ``name``, held by the container ``NAME-keeper``."""

    name: str
    size_mb: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.size_mb <= 1024:
            raise ConfigError(
                f"a small disk of {self.size_mb} MiB", "choose 1 to 1024 MiB (it lives in memory)"
            )

    @property
    def keeper(self) -> str:
        return f"{self.name}-keeper"

    def commands(self) -> list[str]:
        """The ``docker`` lines that make the disk and its keeper by hand."""
        return [
            f"docker volume create --label {OWNER_LABEL}=true --driver local --opt type=tmpfs "
            f"--opt device=tmpfs --opt o=size={self.size_mb}m {self.name}",
            f"docker run -d --name {self.keeper} --label {OWNER_LABEL}=true "
            f"-v {self.name}:{KEEPER_MOUNT} {TOOLS_IMAGE} sleep {KEEPER_SLEEP}",
        ]

    def remove_commands(self) -> list[str]:
        return [f"docker rm -f {self.keeper}", f"docker volume rm {self.name}"]

    def create(self, engine: docker.DockerClient) -> SmallDisk:
        """Make the disk and start its keeper (replacing reglab's earlier ones: the disk is
        empty afterwards)."""
        self.remove(engine)
        with docker_errors(f"cannot make the small disk {self.name}", error=RegistryError):
            engine.volumes.create(
                self.name,
                driver="local",
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={self.size_mb}m"},
                labels=owner_labels(),
            )
            engine.containers.run(
                TOOLS_IMAGE,
                ["sleep", KEEPER_SLEEP],
                detach=True,
                name=self.keeper,
                labels=owner_labels(),
                volumes={self.name: {"bind": KEEPER_MOUNT, "mode": "rw"}},
            )
        return self

    def remove(self, engine: docker.DockerClient) -> bool:
        """Remove the keeper and the volume (reglab's only); True when a volume went."""
        with docker_errors(f"cannot remove the small disk {self.name}", error=RegistryError):
            try:
                keeper = engine.containers.get(self.keeper)
            except docker.errors.NotFound:
                keeper = None
            if keeper is not None:
                _check_owned(keeper.labels, f"container {self.keeper}")
                keeper.remove(force=True, v=True)
            try:
                volume = engine.volumes.get(self.name)
            except docker.errors.NotFound:
                return False
            _check_owned(volume.attrs.get("Labels"), f"volume {self.name}")
            volume.remove(force=True)
        return True

    def usage(self, engine: docker.DockerClient) -> tuple[int, int]:
        """(bytes used, bytes in all) of the disk, as ``df`` sees them."""
        out = _in_volume(engine, self.name, f"df -k {KEEPER_MOUNT}").splitlines()[-1].split()
        return int(out[2]) * 1024, int(out[1]) * 1024


def volume_file_bytes(engine: docker.DockerClient, volume: str, folder: str) -> int:
    """Bytes of every file below ``folder`` of a named volume (measured by a one-off container
    that mounts it read-only: the host may not read the engine's volumes)."""
    where = f"{KEEPER_MOUNT}/{folder}"
    out = _in_volume(
        engine, volume, f"[ ! -d {where} ] || find {where} -type f -exec busybox stat -c %s {{}} +"
    )
    return sum(int(n) for n in out.split())


def _in_volume(engine: docker.DockerClient, volume: str, script: str) -> str:
    return run_once(
        engine,
        TOOLS_IMAGE,
        ["sh", "-c", script],
        volumes={volume: {"bind": KEEPER_MOUNT, "mode": "ro"}},
        what=f"cannot read the volume {volume}",
        error=RegistryError,
    )


def _check_owned(labels: dict[str, str] | None, what: str) -> None:
    if not is_owned(labels):
        raise NotOwned(
            f"{what} exists and was not created by reglab, so it is left alone",
            "choose another name, or remove it yourself",
        )


__all__ = ["SmallDisk", "volume_file_bytes"]
