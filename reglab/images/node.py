"""The node notebook's image: a Kubernetes node's image side in a container.

``reglab-containerd:1`` is Debian's containerd, debootstrapped like the other Debian images;
``reglab-node:1`` adds ``crictl``, built with Go from cri-tools at a pinned version (Debian has
no package of it): the command that makes the kubelet's CRI calls from a terminal. The node's
``config.toml`` (:mod:`reglab.images.nodeconfig`) and crictl's settings are in the image, as a
node's distribution ships them (kind's node image too); only the ``hosts.toml`` folder,
``certs.d``, is mounted from the working folder at run time (:mod:`reglab.node.container`):
what a learner changes is what a cluster's operator changes.
"""

from __future__ import annotations

import json

import docker

from reglab.base import settings
from reglab.base.progress import ProgressCallback
from reglab.images import gobuild
from reglab.images.context import BuildContext, source_digest
from reglab.images.nodeconfig import POD, NodeConfig, crictl_yaml

#: The Debian packages of the node's base.
CONTAINERD_PACKAGES = ["containerd"]
CRICTL_PROGRAM = gobuild.GoProgram("crictl", "sigs.k8s.io/cri-tools/cmd/crictl", "v1.37.0")
NODE_DOCKERFILE = f"""\
FROM {settings.CONTAINERD_IMAGE}
COPY crictl /usr/local/bin/crictl
COPY config.toml crictl.yaml pod.json {settings.NODE_CONFIG_DIR}/
ENV CRI_CONFIG_FILE={settings.NODE_CONFIG_DIR}/crictl.yaml
ENTRYPOINT ["containerd", "--config", "{settings.NODE_CONFIG_DIR}/config.toml"]
""".encode()


def node_sources() -> list[bytes]:
    return [NODE_DOCKERFILE, f"{CRICTL_PROGRAM}".encode(), *_files().values()]


def _files() -> dict[str, bytes]:
    return {
        "config.toml": NodeConfig().toml().encode(),
        "crictl.yaml": crictl_yaml().encode(),
        "pod.json": json.dumps(POD, indent=1).encode(),
    }


def build_node_image(
    client: docker.DockerClient, *, progress: ProgressCallback | None = None
) -> str:
    """``reglab-node:1``: crictl (built here, cached) on Debian's containerd."""
    context = BuildContext(NODE_DOCKERFILE)
    context.add_file(gobuild.build(CRICTL_PROGRAM), "crictl")
    for name, data in _files().items():
        context.add_bytes(data, name)
    return context.build(client, settings.NODE_IMAGE, progress, source_digest(node_sources()))


__all__ = ["CONTAINERD_PACKAGES", "CRICTL_PROGRAM", "build_node_image", "node_sources"]
