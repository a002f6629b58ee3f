"""A node's view of the registry: Debian's containerd in a container, pulled from through CRI
as the kubelet pulls (crictl), configured only by hosts.toml. Every claim of the node notebook,
against the real containerd and the real registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import MakeRegistry
from docker import DockerClient

import reglab
from reglab.base.errors import RegistryError
from reglab.engine import transfer
from reglab.images.build import ensure_images
from reglab.node.container import Node

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def node_image(engine: DockerClient) -> None:
    ensure_images(engine, "node", offline=True)


@pytest.fixture
def node(engine: DockerClient, node_image: None, tmp_path: Path) -> Iterator[Node]:
    made = Node(engine, f"reglab-test-node-{uuid.uuid4().hex[:6]}", tmp_path / "node")
    made.up()
    try:
        yield made
    finally:
        made.down()
    assert made.container is None


def pushed(engine: DockerClient, registry: reglab.Registry, repository: str, **auth: str) -> str:
    ref = registry.ref(repository)
    transfer.tag(engine, "hello-world", ref)
    try:
        return transfer.push(engine, ref, auth=auth or None)
    finally:
        transfer.remove(engine, ref)


def test_a_plain_http_registry_needs_its_hosts_toml_then_serves_the_node(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    registry = make_registry("local")
    digest = pushed(engine, registry, "hello-world")
    ref = registry.ref("hello-world")
    with pytest.raises(RegistryError, match="server gave HTTP response to HTTPS client"):
        node.pull(ref)  # the classic mistake: containerd asks every host over HTTPS
    node.trust(registry.address, None)
    found = node.pull(ref)
    assert found.digest_for(f"{registry.address}/hello-world") == digest
    assert node.remove_image(ref) and node.image(ref) is None


def test_a_tls_registry_is_pulled_only_once_the_node_trusts_its_ca_and_with_its_login(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    """The auth stage: HTTPS with the workshop CA and a bcrypt login. containerd needs the CA
    in hosts.toml (not Docker's certs.d) and the login from the pull secret (CRI AuthConfig)."""
    user = reglab.Credentials.generate("kube")
    registry = make_registry("auth", users=[user])
    digest = pushed(engine, registry, "team/app", username=user.user, password=user.password)
    ref = registry.ref("team/app")
    node.trust(registry.address, registry.config.paths.ca_cert)
    with pytest.raises(RegistryError, match="401|unauthorized|authorization failed"):
        node.pull(ref, ("kube", "not-the-password"))
    found = node.pull(ref, user.as_tuple())
    assert found.digest_for(f"{registry.address}/team/app") == digest


def test_the_registry_mirrors_docker_io_for_the_node_and_sees_ns(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    registry = make_registry("local")
    digest = pushed(engine, registry, "library/hello-world")
    node.mirror(registry.address)  # plain HTTP: no CA
    found = node.pull("docker.io/library/hello-world:latest")
    assert found.digest_for("docker.io/library/hello-world") == digest
    assert "ns=docker.io" in registry.logs(tail=2000)
