"""The same registry settings as a real cluster takes them, rendered from data.

A node's containerd reads ``hosts.toml`` (:mod:`reglab.node.hosts`); how those files reach
every node differs by distribution, and so does how a pod gets a login:

- kind: a ``containerdConfigPatches`` entry in the cluster's config sets ``config_path``, and
  the ``hosts.toml`` files are copied into each node (kind's nodes are containers);
- k3s: one ``/etc/rancher/k3s/registries.yaml`` per node, from which k3s writes containerd's
  files itself (``mirrors`` and ``configs``);
- any cluster: the ``local-registry-hosting`` ConfigMap of KEP-1755, which tells tools where
  the cluster's local registry is; and a pull secret (``kubernetes.io/dockerconfigjson``) that
  the kubelet reads from a pod's ``imagePullSecrets`` and hands containerd as CRI's
  ``AuthConfig``.

Pure functions: YAML text, never written or applied here.
"""

from __future__ import annotations

import base64
import json

import yaml

from reglab.node.hosts import CRI_REGISTRY_SECTION, registry_address


class _Block(str):
    """A multi-line string that YAML writes as a literal block (``|``), as people write it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Block, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
)


def _yaml(document: object) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False)


#: Where kind's and most distributions' nodes keep the ``hosts.toml`` folders.
CONFIG_PATH = "/etc/containerd/certs.d"


def kind_config(config_path: str = CONFIG_PATH, version: int = 2) -> str:
    """A kind cluster whose nodes' containerd reads ``hosts.toml`` under ``config_path``
    (``version``: the node image's containerd configuration version, 3 from containerd 2)."""
    patch = f"[{CRI_REGISTRY_SECTION[version]}]\n  config_path = {json.dumps(config_path)}\n"
    cluster = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "containerdConfigPatches": [_Block(patch)],
    }
    return _yaml(cluster)


def k3s_registries(
    address: str,
    ca_file: str | None = None,
    mirror_of: str | None = None,
    login: tuple[str, str] | None = None,
) -> str:
    """k3s's ``registries.yaml`` for the registry at ``address``: trusted with ``ca_file``
    (HTTPS; plain HTTP without it), as a mirror of ``mirror_of`` (``docker.io``) if given,
    and with a login if given."""
    address = registry_address(address)
    scheme = "https" if ca_file else "http"
    document: dict[str, object] = {}
    if mirror_of:
        document["mirrors"] = {mirror_of: {"endpoint": [f"{scheme}://{address}"]}}
    config: dict[str, object] = {}
    if ca_file:
        config["tls"] = {"ca_file": ca_file}
    if login:
        config["auth"] = {"username": login[0], "password": login[1]}
    if config:
        document["configs"] = {address: config}
    return yaml.safe_dump(document, sort_keys=False)


def local_registry_hosting(
    address: str, from_runtime: str | None = None, help_url: str | None = None
) -> str:
    """KEP-1755's ConfigMap: where the cluster's local registry is, for tools to read:
    ``host`` as seen from outside the cluster (a developer's ``docker push``), and
    ``hostFromContainerRuntime`` when the nodes' runtime knows it by another name."""
    hosting: dict[str, str] = {"host": registry_address(address)}
    if from_runtime:
        hosting["hostFromContainerRuntime"] = registry_address(from_runtime)
    if help_url:
        hosting["help"] = help_url
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": _Block(yaml.safe_dump(hosting, sort_keys=False))},
    }
    return _yaml(config_map)


def pull_secret(name: str, address: str, user: str, password: str) -> str:
    """A ``kubernetes.io/dockerconfigjson`` Secret: what ``kubectl create secret
    docker-registry`` writes. A pod naming it in ``imagePullSecrets`` has the kubelet pass
    that login to containerd with each pull (CRI's ``AuthConfig``)."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {
        "auths": {registry_address(address): {"username": user, "password": password, "auth": auth}}
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }
    return yaml.safe_dump(secret, sort_keys=False)


__all__ = [
    "CONFIG_PATH", "k3s_registries", "kind_config", "local_registry_hosting", "pull_secret",
]  # fmt: skip
