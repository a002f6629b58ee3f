"""A small disk for a registry: a size-limited tmpfs volume, to watch a registry fill up.

The engine makes it (``docker volume create`` with tmpfs options): no root, no loop device, and
nothing written on the learner's real disk. A tmpfs lives in memory only while something mounts
it: when the last container using the volume stops, its contents are gone. So a *keeper*
container holds it mounted for as long as the disk is needed, and the registry can restart (as
garbage collection does) without losing its data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from reglab.base.errors import ConfigError, NotOwned, RegistryError, docker_errors
from reglab.base.labels import is_owned, owner_labels
from reglab.base.settings import TOOLS_IMAGE
from reglab.engine.oneoff import one_off, run_once
from reglab.engine.spec import ContainerSpec, Mount

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

    @property
    def options(self) -> dict[str, str]:
        """The volume driver's options: a tmpfs of the disk's size."""
        return {"type": "tmpfs", "device": "tmpfs", "o": f"size={self.size_mb}m"}

    def keeper_spec(self) -> ContainerSpec:
        """The keeper: a container that only sleeps, with the disk mounted."""
        return ContainerSpec(
            TOOLS_IMAGE,
            ("sleep", KEEPER_SLEEP),
            name=self.keeper,
            labels=owner_labels(),
            mounts=(Mount(self.name, KEEPER_MOUNT),),
        )

    def commands(self) -> list[str]:
        """The ``docker`` lines that make the disk and its keeper by hand."""
        options = " ".join(f"--opt {key}={value}" for key, value in self.options.items())
        labels = " ".join(f"--label {key}={value}" for key, value in owner_labels().items())
        return [
            f"docker volume create {labels} --driver local {options} {self.name}",
            self.keeper_spec().shell(),
        ]

    def remove_commands(self) -> list[str]:
        return [f"docker rm -f {self.keeper}", f"docker volume rm {self.name}"]

    def create(self, engine: docker.DockerClient) -> SmallDisk:
        """Make the disk and start its keeper (replacing reglab's earlier ones: the disk is
        empty afterwards)."""
        self.remove(engine)
        with docker_errors(f"cannot make the small disk {self.name}", error=RegistryError):
            engine.volumes.create(
                self.name, driver="local", driver_opts=self.options, labels=owner_labels()
            )
            engine.containers.run(**self.keeper_spec().run_kwargs())
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
        out = run_once(engine, self.usage_spec(), **_reading(self.name)).splitlines()[-1].split()
        return int(out[2]) * 1024, int(out[1]) * 1024

    def usage_spec(self) -> ContainerSpec:
        """``df`` in a one-off container that mounts the disk read-only."""
        return volume_spec(self.name, KEEPER_MOUNT, "df", "-k", KEEPER_MOUNT)


def volume_spec(volume: str, mount: str, *command: str) -> ContainerSpec:
    """A one-off reglab-tools container running ``command`` with ``volume`` read-only at
    ``mount`` (the host may not read the engine's volumes)."""
    return one_off(TOOLS_IMAGE, command, mounts=(Mount(volume, mount, read_only=True),))


def file_bytes_script(where: str) -> str:
    """A shell line that prints the bytes of every file below ``where`` (0 when it is not
    there): the sum of the files' own sizes, as reglab counts them (``du -sb`` would add each
    folder's size too; ``wc -c`` counts what ``cat`` reads, a workshop's few megabytes).
    ``where`` as the shell should read it (quoted when it needs to be)."""
    return f"[ ! -d {where} ] && echo 0 || find {where} -type f -exec cat {{}} + | wc -c"


def volume_file_bytes_spec(volume: str, folder: str) -> ContainerSpec:
    """The one-off that prints the bytes of every file below ``folder`` of a named volume."""
    script = file_bytes_script(f"{KEEPER_MOUNT}/{folder}")
    return volume_spec(volume, KEEPER_MOUNT, "sh", "-c", script)


def volume_file_bytes(engine: docker.DockerClient, volume: str, folder: str) -> int:
    """Bytes of every file below ``folder`` of a named volume."""
    spec = volume_file_bytes_spec(volume, folder)
    return int(run_once(engine, spec, **_reading(volume)).split()[-1])


def _reading(volume: str) -> dict[str, Any]:
    return {"what": f"cannot read the volume {volume}", "error": RegistryError}


def _check_owned(labels: dict[str, str] | None, what: str) -> None:
    if not is_owned(labels):
        raise NotOwned(
            f"{what} exists and was not created by reglab, so it is left alone",
            "choose another name, or remove it yourself",
        )


__all__ = [
    "SmallDisk",
    "file_bytes_script",
    "volume_file_bytes",
    "volume_file_bytes_spec",
    "volume_spec",
]
