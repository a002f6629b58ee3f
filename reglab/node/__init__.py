"""A Kubernetes node's view of the registry: containerd's own registry configuration.

The core side of the node notebook (see :mod:`reglab.node.hosts`): what a node reads, rendered
from data. Nothing here imports the notebook layer.
"""

from reglab.node.hosts import (
    ALL,
    DOCKER_HUB_SERVER,
    PULL,
    Host,
    HostsFile,
    containerd_config,
    mirror,
    plain_http,
    registry_address,
    trust,
)

__all__ = [
    "ALL", "DOCKER_HUB_SERVER", "Host", "HostsFile", "PULL", "containerd_config", "mirror",
    "plain_http", "registry_address", "trust",
]  # fmt: skip
