"""The workshop's own Docker network.

Its gateway is an address of this machine that is *not* loopback, so Docker applies its normal
TLS rules there (on 127.0.0.0/8 it never verifies): the TLS stage uses it to show Docker
verifying a certificate.
"""

from __future__ import annotations

import docker

from reglab.base.errors import NotOwned, RegistryError, docker_errors
from reglab.base.labels import is_owned, owner_labels

NETWORK = "reglab-net"


def project_network(engine: docker.DockerClient, name: str = NETWORK) -> str:
    """The workshop's own bridge network (created if needed); return its gateway address."""
    with docker_errors(f"cannot create network {name}"):
        found = engine.networks.list(names=[name])
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


def remove_project_network(engine: docker.DockerClient, name: str = NETWORK) -> bool:
    """Remove the workshop's network if reglab created it; True when removed."""
    with docker_errors(f"cannot remove network {name}"):
        for network in engine.networks.list(names=[name]):
            network.reload()
            if is_owned(network.attrs.get("Labels")):
                network.remove()
                return True
    return False
