"""The node's containerd configuration, read back with a TOML parser: its own root, state and
socket, the CRI plugin's sandbox image, snapshotter and hosts.toml folder (no containerd here;
the node's integration tests start one with it)."""

from __future__ import annotations

import tomllib

import yaml

from reglab.images.nodeconfig import HOSTS_DIR, PAUSE_IMAGE, SOCKET, NodeConfig, crictl_yaml


def test_the_node_has_its_own_root_state_and_socket_and_reads_hosts_toml() -> None:
    config = tomllib.loads(NodeConfig().toml())
    assert config["version"] == 2
    assert config["root"] != "/var/lib/containerd" and config["state"] != "/run/containerd"
    assert config["grpc"] == {"address": SOCKET}
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["containerd"] == {"snapshotter": "native"}  # no mount: no privilege needed
    assert cri["registry"] == {"config_path": HOSTS_DIR}
    assert "disabled_plugins" not in config


def test_a_mirrored_sandbox_image_is_what_the_node_asks_for() -> None:
    mirrored = NodeConfig(sandbox_image="127.0.0.1:5000/pause:3.10")
    cri = tomllib.loads(mirrored.toml())["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "127.0.0.1:5000/pause:3.10"


def test_crictl_talks_to_the_nodes_socket() -> None:
    settings = yaml.safe_load(crictl_yaml())
    assert settings["runtime-endpoint"] == settings["image-endpoint"] == f"unix://{SOCKET}"
