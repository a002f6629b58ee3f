"""A registry's settings as kind, k3s and any Kubernetes cluster take them, read back: the
documents parse, and say what the node's containerd and the kubelet need (no cluster here)."""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Callable

import pytest
import yaml

from reglab.base.errors import ConfigError
from reglab.node.cluster import (
    CONFIG_PATH,
    k3s_registries,
    kind_config,
    local_registry_hosting,
    pull_secret,
)


@pytest.mark.parametrize(
    ("version", "plugin"),
    [(2, "io.containerd.grpc.v1.cri"), (3, "io.containerd.cri.v1.images")],
)
def test_a_kind_cluster_points_its_nodes_containerd_at_hosts_toml(
    version: int, plugin: str
) -> None:
    cluster = yaml.safe_load(kind_config(version=version))
    assert cluster["kind"] == "Cluster" and cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (patch,) = cluster["containerdConfigPatches"]
    assert tomllib.loads(patch)["plugins"][plugin]["registry"] == {"config_path": CONFIG_PATH}


def test_k3s_registries_yaml_mirrors_trusts_and_logs_in() -> None:
    document = yaml.safe_load(
        k3s_registries("127.0.0.1:5000", "/etc/ssl/ca.crt", "docker.io", ("bob", "pw"))
    )
    assert document == {
        "mirrors": {"docker.io": {"endpoint": ["https://127.0.0.1:5000"]}},
        "configs": {
            "127.0.0.1:5000": {
                "tls": {"ca_file": "/etc/ssl/ca.crt"},
                "auth": {"username": "bob", "password": "pw"},
            }
        },
    }
    plain = yaml.safe_load(k3s_registries("127.0.0.1:5000", mirror_of="docker.io"))
    assert plain == {"mirrors": {"docker.io": {"endpoint": ["http://127.0.0.1:5000"]}}}


def test_the_local_registry_hosting_config_map_is_kep_1755s() -> None:
    config_map = yaml.safe_load(
        local_registry_hosting("localhost:5001", "kind-registry:5000", "https://example/help")
    )
    assert config_map["metadata"] == {"name": "local-registry-hosting", "namespace": "kube-public"}
    hosting = yaml.safe_load(config_map["data"]["localRegistryHosting.v1"])
    assert hosting == {
        "host": "localhost:5001",  # from outside the cluster
        "hostFromContainerRuntime": "kind-registry:5000",  # the nodes' name for it
        "help": "https://example/help",
    }


def test_a_pull_secret_holds_the_login_as_docker_config_json() -> None:
    secret = yaml.safe_load(pull_secret("regcred", "127.0.0.1:5000", "bob", "s3cret:pw"))
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"] == {"name": "regcred"}
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"]["127.0.0.1:5000"]
    assert base64.b64decode(entry["auth"]).decode() == "bob:s3cret:pw"  # split at the first ":"
    assert (entry["username"], entry["password"]) == ("bob", "s3cret:pw")


def test_an_address_with_a_scheme_is_one_line_everywhere() -> None:
    renders: list[Callable[[], str]] = [
        lambda: k3s_registries("https://127.0.0.1:5000"),
        lambda: local_registry_hosting("http://localhost:5001"),
        lambda: pull_secret("x", "127.0.0.1:5000/v2", "u", "p"),
    ]
    for render in renders:
        with pytest.raises(ConfigError, match="not a registry address"):
            render()
