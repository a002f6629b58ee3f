"""containerd's hosts.toml files, as reglab renders them, read back with a TOML parser: the
keys containerd's docs/hosts.md names, in the folder an image reference names (no containerd
here; the node's tests pull through a real one)."""

from __future__ import annotations

import tomllib

import pytest

from reglab.base.errors import ConfigError
from reglab.node import (
    DOCKER_HUB_SERVER,
    Host,
    containerd_config,
    mirror,
    plain_http,
    registry_address,
    trust,
)
from reglab.node.container import pull_error


def test_a_tls_registry_is_trusted_with_the_ca_file_and_may_be_pushed_to() -> None:
    file = trust("127.0.0.1:5000", "/etc/containerd/certs.d/127.0.0.1:5000/ca.crt")
    assert file.path == "127.0.0.1:5000/hosts.toml"
    read = tomllib.loads(file.toml())
    assert read == {
        "server": "https://127.0.0.1:5000",
        "ca": "/etc/containerd/certs.d/127.0.0.1:5000/ca.crt",  # for server, asked last
        "host": {
            "https://127.0.0.1:5000": {
                "capabilities": ["pull", "resolve", "push"],
                "ca": "/etc/containerd/certs.d/127.0.0.1:5000/ca.crt",
            }
        },
    }


def test_the_ca_is_beside_the_file_by_default() -> None:
    read = tomllib.loads(trust("r.test:5000").toml())
    assert read["ca"] == read["host"]["https://r.test:5000"]["ca"] == "ca.crt"


def test_a_plain_http_registry_is_named_http_or_containerd_asks_it_over_https() -> None:
    read = tomllib.loads(plain_http("127.0.0.1:5000").toml())
    assert read["server"] == "http://127.0.0.1:5000"
    assert list(read["host"]) == ["http://127.0.0.1:5000"]
    assert "ca" not in read["host"]["http://127.0.0.1:5000"]


def test_a_mirror_of_docker_hub_pulls_and_resolves_only_and_falls_back_to_the_hub() -> None:
    file = mirror("127.0.0.1:5000", ca="/certs/ca.crt")
    assert file.path == "docker.io/hosts.toml"  # the folder a reference to docker.io names
    read = tomllib.loads(file.toml())
    assert read["server"] == DOCKER_HUB_SERVER
    assert read["host"] == {
        "https://127.0.0.1:5000": {"capabilities": ["pull", "resolve"], "ca": "/certs/ca.crt"}
    }
    plain = tomllib.loads(mirror("127.0.0.1:5000").toml())
    assert list(plain["host"]) == ["http://127.0.0.1:5000"]  # no CA: a plain-HTTP mirror
    other = mirror("127.0.0.1:5000", upstream="quay.io")
    assert other.path == "quay.io/hosts.toml" and other.server == "https://quay.io"


def test_a_mirror_without_fallback_is_its_own_server() -> None:
    """Air-gapped: when the mirror cannot answer, nothing is asked of the upstream."""
    read = tomllib.loads(mirror("r:1", fallback=False).toml())
    assert read["server"] == "http://r:1"
    assert DOCKER_HUB_SERVER not in mirror("r:1", ca="/ca.crt", fallback=False).toml()


def test_skip_verify_is_written_only_when_asked_for() -> None:
    for file in (trust("r:1", "/ca.crt"), plain_http("r:1"), mirror("r:1", ca="/ca.crt")):
        assert "skip_verify" not in file.toml()
    read = tomllib.loads(Host("https://r:1", skip_verify=True).toml())
    assert read["host"]["https://r:1"]["skip_verify"] is True


def test_the_cri_plugin_section_moves_between_configuration_versions() -> None:
    v2 = tomllib.loads(containerd_config("/etc/containerd/certs.d"))
    assert v2["version"] == 2
    assert v2["plugins"]["io.containerd.grpc.v1.cri"]["registry"] == {
        "config_path": "/etc/containerd/certs.d"
    }
    v3 = tomllib.loads(containerd_config("/etc/containerd/certs.d", version=3))
    assert v3["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"] == (
        "/etc/containerd/certs.d"
    )
    with pytest.raises(ConfigError, match="version 4") as bad:
        containerd_config("/x", version=4)
    assert "\n" not in str(bad.value)


@pytest.mark.parametrize(
    "address", ["https://127.0.0.1:5000", "127.0.0.1:5000/v2", "", "127.0.0.1:port", ":5000"]
)
def test_an_address_that_is_not_host_port_is_one_line(address: str) -> None:
    with pytest.raises(ConfigError, match="not a registry address") as bad:
        registry_address(address)
    assert "\n" not in str(bad.value) and "127.0.0.1:5000" in str(bad.value.fix)


@pytest.mark.parametrize("address", ["127.0.0.1:5000", "registry.example", "[::1]:5000", "[::1]"])
def test_host_and_host_port_are_registry_addresses(address: str) -> None:
    assert registry_address(f" {address} ") == address


def test_a_failed_pull_is_containerds_cause_without_its_wrapping() -> None:
    said = (
        'time="2026-12-01T06:56:57Z" level=fatal msg="pulling image: failed to pull and unpack '
        'image \\"r.test:5/x:1\\": failed to resolve reference \\"r.test:5/x:1\\": failed to do '
        'request: Head \\"http://r.test:5/v2/x/manifests/1\\": dial tcp 127.0.0.1:5: connect: '
        'connection refused"'
    )
    error = pull_error("r.test:5/x:1", f"warning\n{said}\n")
    assert error.problem == (
        "the node could not pull r.test:5/x:1: failed to do request: Head "
        '"http://r.test:5/v2/x/manifests/1": dial tcp 127.0.0.1:5: connect: connection refused'
    )
    assert "is the registry running" in (error.fix or "")
