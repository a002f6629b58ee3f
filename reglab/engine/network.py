"""The workshop's own Docker network.

Its gateway is an address of this machine that is *not* loopback, so Docker applies its normal
TLS rules there (on 127.0.0.0/8 it never verifies): the TLS stage uses it to show Docker
verifying a certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from reglab.base.errors import NotOwned, RegistryError, docker_errors
from reglab.base.labels import is_owned, owner_labels

NETWORK = "reglab-net"


def project_network(engine: docker.DockerClient, name: str = NETWORK) -> str:
    """The workshop's own bridge network (created if needed); return its gateway address."""
    with docker_errors(f"cannot create network {name}"):
        # The engine's name filter matches parts of names too: keep the exact one.
        found = [n for n in engine.networks.list(names=[name]) if n.name == name]
        network = (
            found[0]
            if found
            else engine.networks.create(name, driver="bridge", labels=owner_labels())
        )
        network.reload()
    if not is_owned(network.attrs.get("Labels")):
        raise NotOwned(
            f"a network named {name} exists and was not created by reglab",
            f"remove it yourself (docker network rm {name}) or pass another name",
        )
    configs = network.attrs["IPAM"]["Config"] or [{}]
    gateway = configs[0].get("Gateway")
    if not gateway:
        raise RegistryError(
            f"network {name} has no gateway address",
            f"remove it (docker network rm {name}) and try again",
        )
    return str(gateway)


@dataclass(frozen=True)
class NetworkRemoval:
    """What :func:`remove_project_network` did: true when the network went; ``str()`` is the
    one line that says so, or which containers kept it."""

    name: str
    removed: bool
    kept_for: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.removed

    def __str__(self) -> str:
        if self.removed:
            return f"removed network {self.name}"
        if self.kept_for:
            return (
                f"network {self.name} left in place: {', '.join(self.kept_for)} still "
                f"use{'s' if len(self.kept_for) == 1 else ''} it"
            )
        return f"no network {self.name} of reglab's to remove"


def remove_project_network(engine: docker.DockerClient, name: str = NETWORK) -> NetworkRemoval:
    """Remove the workshop's network if reglab created it and no container is on it.

    The network is shared (a learner's own mirror from ``reglab up mirror`` joins it too), so
    one user's clean-up must not pull it from under another: while any container, running or
    stopped, is attached, it stays and the result names them.
    """
    with docker_errors(f"cannot remove network {name}"):
        for network in engine.networks.list(names=[name]):
            network.reload()
            if not is_owned(network.attrs.get("Labels")) or network.name != name:
                continue
            users = _attached(engine, network)
            if not users:
                try:
                    network.remove()
                    return NetworkRemoval(name, True)
                except docker.errors.APIError as exc:
                    if "active endpoints" not in str(exc):
                        raise
                    users = _attached(engine, network)  # one joined meanwhile
            return NetworkRemoval(name, False, users)
    return NetworkRemoval(name, False)


def _attached(engine: docker.DockerClient, network: Any) -> tuple[str, ...]:
    """The containers on the network: running, stopped (it would not start again without it)
    or only created (the engine's network filter misses those: their mode names it)."""
    found = engine.containers.list(all=True, ignore_removed=True)  # others come and go
    return tuple(
        sorted(
            str(c.name)
            for c in found
            if network.id in _network_ids(c)
            or c.attrs["HostConfig"].get("NetworkMode") == network.name
        )
    )


def _network_ids(container: Any) -> set[str]:
    networks = container.attrs["NetworkSettings"].get("Networks") or {}
    return {str(n.get("NetworkID")) for n in networks.values()}
