"""The node's own containerd: its whole ``config.toml``, baked into the node's image.

A Kubernetes node's containerd is configured by its distribution; the workshop's node is a
container (as kind's nodes are) running Debian's containerd with the few settings a node's
image side needs, each for a reason:

- ``root``, ``state`` and the socket of its own: nothing is shared with the Docker engine's
  containerd on the same machine;
- the CRI plugin on (the file disables no plugin), reading ``hosts.toml`` under
  ``config_path`` (:mod:`reglab.node.hosts`) at each pull: no restart after a change;
- the ``native`` snapshotter: it unpacks layers by copying files, where ``overlayfs`` needs to
  mount, which a container may not do without privileges;
- ``sandbox_image``: the ``pause`` image every pod starts with. A node that cannot pull it
  cannot start a pod, whatever the pod's own image; an air-gapped cluster must mirror it.

Pure: the text of the file (:meth:`NodeConfig.toml`), read back in unit tests. (It sits with
the images because the image holds it; :mod:`reglab.node` writes only ``hosts.toml`` files.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from reglab.base.settings import NODE_CONFIG_DIR

#: Where containerd's CRI plugin reads ``config_path``, by configuration version: 2 for
#: containerd 1.6 and 1.7 (Debian 12 ships 1.6.20), 3 for containerd 2.x (which also
#: migrates a version 2 file when it starts).
CRI_REGISTRY_SECTION = {
    2: 'plugins."io.containerd.grpc.v1.cri".registry',
    3: 'plugins."io.containerd.cri.v1.images".registry',
}

#: Where the node's files are inside its container.
CONFIG_DIR = NODE_CONFIG_DIR
HOSTS_DIR = f"{CONFIG_DIR}/certs.d"
SOCKET = "/run/reglab-node/containerd.sock"
#: A pod's sandbox as the kubelet asks CRI for it (``RunPodSandbox``), in crictl's JSON: the
#: node's network (no CNI needed). Enough to see whether a pod gets past its sandbox image.
POD_FILE = f"{CONFIG_DIR}/pod.json"
POD = {
    "metadata": {"name": "hello", "namespace": "default", "uid": "reglab-hello", "attempt": 1},
    "linux": {"security_context": {"namespace_options": {"network": 2}}},  # 2: NODE
}
#: Kubernetes' own pause image (kubeadm's default for Kubernetes 1.31-1.33): what a node
#: without a mirror asks for.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


@dataclass(frozen=True)
class NodeConfig:
    """What the node's containerd is told; the defaults are the workshop's node."""

    root: str = "/var/lib/reglab-node"
    state: str = "/run/reglab-node/state"
    socket: str = SOCKET
    hosts_dir: str = HOSTS_DIR
    sandbox_image: str = PAUSE_IMAGE
    snapshotter: str = "native"

    def toml(self) -> str:
        """containerd's ``config.toml``, configuration version 2 (Debian 12 ships
        containerd 1.6; 2.x reads version 3, where the CRI sections are split)."""
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        q = json.dumps  # a TOML basic string is a JSON string for these values
        return "\n".join(
            [
                "version = 2",
                f"root = {q(self.root)}",
                f"state = {q(self.state)}",
                "",
                "[grpc]",
                f"  address = {q(self.socket)}",
                "",
                f"[{cri}]",
                f"  sandbox_image = {q(self.sandbox_image)}",
                "",
                f"[{cri}.containerd]",
                f"  snapshotter = {q(self.snapshotter)}",
                "",
                f"[{CRI_REGISTRY_SECTION[2]}]",
                f"  config_path = {q(self.hosts_dir)}",
                "",
            ]
        )


def crictl_yaml(socket: str = SOCKET) -> str:
    """``/etc/crictl.yaml``: crictl (the kubelet's calls, from a terminal) talks to this
    containerd's socket."""
    endpoint = f"unix://{socket}"
    return f"runtime-endpoint: {endpoint}\nimage-endpoint: {endpoint}\ntimeout: 30\n"


__all__ = [
    "CONFIG_DIR",
    "CRI_REGISTRY_SECTION",
    "POD",
    "POD_FILE",
    "HOSTS_DIR",
    "NodeConfig",
    "PAUSE_IMAGE",
    "SOCKET",
    "crictl_yaml",
]
