"""A node's view of the registry: Debian's containerd in a container, pulled from through CRI
as the kubelet pulls (crictl), configured only by hosts.toml. Every claim of the node notebook,
against the real containerd and the real registry."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import MakeRegistry
from docker import DockerClient

import reglab
from reglab.base.errors import ConfigError, RegistryError
from reglab.engine import transfer
from reglab.images.build import ensure_images
from reglab.images.nodeconfig import PAUSE_IMAGE
from reglab.lab import nodes
from reglab.node.container import REGISTRY_HOST, Node
from reglab.registry.token import TokenServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def node_image(engine: DockerClient) -> None:
    ensure_images(engine, "node", offline=True)


@pytest.fixture
def node(engine: DockerClient, node_image: None, tmp_path: Path) -> Iterator[Node]:
    made = Node(engine, f"reglab-test-node-{uuid.uuid4().hex[:6]}", tmp_path / "node")
    made.up().run()
    try:
        yield made
    finally:
        made.down().run()
    assert made.container is None  # its images and containerd's state went with it


def pushed(
    engine: DockerClient,
    registry: reglab.Registry,
    repository: str,
    tag: str = "latest",
    **auth: str,
) -> str:
    ref = registry.ref(repository, tag)
    transfer.tag(engine, "hello-world", ref)
    try:
        return transfer.push(engine, ref, auth=auth or None)
    finally:
        transfer.remove(engine, ref)


def test_loopback_is_plain_http_to_containerd_without_any_hosts_toml(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    """containerd (docker.RegistryHosts' isLocalHost) tries plain HTTP for 127.0.0.1 and
    localhost on its own, as the Docker engine does: the mistake shows only elsewhere."""
    registry = make_registry("local")
    digest = pushed(engine, registry, "hello-world")
    found = node.pull(registry.ref("hello-world")).run()
    assert found.digest_for(f"{registry.address}/hello-world") == digest


def test_a_plain_http_registry_by_name_needs_its_hosts_toml_then_serves_the_node(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    registry = make_registry("local")
    digest = pushed(engine, registry, "hello-world")
    address = f"{REGISTRY_HOST}:{registry.config.port}"  # the name the node's /etc/hosts gives
    ref = f"{address}/hello-world:latest"
    with pytest.raises(RegistryError, match="server gave HTTP response to HTTPS client"):
        node.pull(ref).run()  # the classic mistake: containerd asks a named host over HTTPS
    written = node.trust(address, None).run()
    assert written == node.hosts_dir / address / "hosts.toml"
    found = node.pull(ref).run()
    assert found.digest_for(f"{address}/hello-world") == digest
    assert node.remove_image(ref).run() and node.image(ref) is None


def test_a_tls_registry_is_pulled_only_once_the_node_trusts_its_ca_and_with_its_login(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    """The auth stage: HTTPS with the workshop CA and a bcrypt login. containerd needs the CA
    in hosts.toml (not Docker's certs.d) and the login from the pull secret (CRI AuthConfig)."""
    user = reglab.Credentials.generate("kube")
    registry = make_registry("auth", users=[user], extra_names=(REGISTRY_HOST,))
    digest = pushed(engine, registry, "team/app", username=user.user, password=user.password)
    address = f"{REGISTRY_HOST}:{registry.config.port}"  # a name: HTTPS, as on a cluster
    ref = f"{address}/team/app:latest"
    with pytest.raises(RegistryError, match="certificate signed by unknown authority"):
        node.pull(ref, user.as_tuple()).run()  # HTTPS, but the node knows no workshop CA
    node.trust(address, registry.config.paths.ca_cert).run()
    with pytest.raises(RegistryError, match="401 Unauthorized"):
        node.pull(ref, ("kube", "not-the-password")).run()
    found = node.pull(ref, user.as_tuple()).run()
    assert found.digest_for(f"{address}/team/app") == digest
    # A missing tag is "not found": server, asked after the [host]'s 404, has the CA too.
    with pytest.raises(RegistryError, match="not found"):
        node.pull(f"{address}/team/app:missing", user.as_tuple()).run()


def test_the_registry_mirrors_docker_io_for_the_node_and_sees_ns(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    registry = make_registry("local")
    digest = pushed(engine, registry, "library/hello-world")
    node.mirror(registry.address).run()  # plain HTTP: no CA
    found = node.pull("docker.io/library/hello-world:latest").run()
    assert found.digest_for("docker.io/library/hello-world") == digest
    assert "ns=docker.io" in registry.logs(tail=2000)
    stopped = registry.container
    assert stopped is not None
    stopped.stop(timeout=5)  # the mirror down: the pull fails here, at once
    node.remove_image("docker.io/library/hello-world:latest").run()
    with pytest.raises(RegistryError, match="connection refused"):
        node.pull("docker.io/library/hello-world:latest").run()


def test_a_node_by_digest_and_through_token_auth_gets_the_registrys_digest(
    engine: DockerClient, make_registry: MakeRegistry, node: Node
) -> None:
    """The token stage: containerd follows the registry's Bearer challenge to the token server
    with the pull secret's login; a wrong password is refused by the token server."""
    users = [reglab.Credentials.generate(u) for u in ("admin", "alice", "bob")]
    registry = make_registry("token", users=users, extra_names=(REGISTRY_HOST,))
    admin, alice = users[0], users[1]
    digest = pushed(engine, registry, "team/app", username=admin.user, password=admin.password)
    address = f"{REGISTRY_HOST}:{registry.config.port}"
    by_digest = f"{address}/team/app@{digest}"
    node.trust(address, registry.config.paths.ca_cert).run()
    found = node.pull(by_digest, alice.as_tuple()).run()
    assert found.digest_for(f"{address}/team/app") == digest
    server = TokenServer(registry.config, engine).container
    assert server is not None
    said = server.logs().decode()
    assert '"POST /auth HTTP/1.1" 200' in said  # OAuth2's password grant, as containerd asks
    with pytest.raises(RegistryError, match="401 Unauthorized"):
        node.pull(by_digest, ("alice", "wrong")).run()


def test_bad_input_is_one_line(node: Node, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="names no registry"):
        node.pull("hello-world:latest")
    key = tmp_path / "ca.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="is not a certificate"):
        node.trust("r.test:5000", key).run()
    assert not (node.hosts_dir / "r.test:5000").exists()  # nothing half-written
    with pytest.raises(ConfigError, match="not a registry address"):
        node.trust("https://r.test:5000/v2/")


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reglab", *args],
        input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, "REGLAB_NAME": "reglab-test-cli", "REGLAB_WORKDIR": ""},
    )  # fmt: skip


def test_the_node_commands_print_their_lines_and_do_what_they_say(
    engine: DockerClient, make_registry: MakeRegistry, node_image: None, tmp_path: Path
) -> None:
    """reglab node up, trust (with the CA), pull (with a login from stdin), down: each prints
    the lines a terminal types; the pull prints the registry's digest; down leaves nothing."""
    user = reglab.Credentials.generate("kube")
    registry = make_registry("auth", users=[user], extra_names=(REGISTRY_HOST,))
    digest = pushed(engine, registry, "team/app", username=user.user, password=user.password)
    named = f"{REGISTRY_HOST}:{registry.config.port}"
    ca = registry.config.paths.ca_cert
    try:
        up = run("node", "up", "--workdir", "workdir", cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        assert "$ docker run -d --name reglab-test-cli-node " in up.stdout
        trust = run("node", "trust", named, "--ca", str(ca), "--workdir", "workdir", cwd=tmp_path)
        assert trust.returncode == 0, trust.stderr
        written = tmp_path / "workdir" / "node" / "certs.d" / named
        assert (written / "ca.crt").read_bytes() == ca.read_bytes()
        assert f'> "workdir/node/certs.d/{named}/hosts.toml"' in trust.stdout  # relative
        ref = f"{named}/team/app:latest"
        pull = run("node", "pull", ref, "--user", user.user, "--password-stdin",
                   "--workdir", "workdir", cwd=tmp_path, stdin=f"{user.password}\n")  # fmt: skip
        assert pull.returncode == 0, pull.stderr
        assert f"{ref}: digest {digest}" in pull.stdout
        assert 'CRICTL_CREDS="kube:$PASSWORD_KUBE" docker exec -e CRICTL_CREDS' in pull.stdout
        assert user.password not in pull.stdout + pull.stderr
        wrong = run("node", "pull", ref, "--workdir", "workdir", cwd=tmp_path)
        assert wrong.returncode == 1 and "401 Unauthorized" in wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1  # one line, no traceback
    finally:
        down = run("node", "down", "--workdir", "workdir", cwd=tmp_path)
    assert down.returncode == 0 and "$ docker rm -f reglab-test-cli-node" in down.stdout
    assert not engine.containers.list(all=True, filters={"name": "reglab-test-cli-node"})


def test_11_exercises_say_not_yet_then_correct(
    engine: DockerClient,
    make_registry: MakeRegistry,
    node: Node,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exercise 1 (predict) by letter; exercise 2 (diagnose and fix): Not yet while the
    registry lacks pause:3.10, Correct once the learner pushed an image under that name and the
    pod's sandbox got past its image (the node holds it with the registry's digest)."""
    assert not nodes.predicted_plain_http("c") and "Not yet" in capsys.readouterr().out
    assert nodes.predicted_plain_http(" (B) ") and "Correct" in capsys.readouterr().out
    registry = make_registry("local")
    node.mirror(registry.address, upstream="registry.k8s.io").run()
    assert not nodes.sandbox_served(node, registry)
    assert "no pause:3.10 yet" in capsys.readouterr().out
    served = pushed(engine, registry, "pause", tag="3.10")  # the learner's fix, by hand
    assert nodes.sandbox_served(node, registry)
    assert "Correct" in capsys.readouterr().out
    held = node.image(PAUSE_IMAGE)
    assert held is not None and held.digest == served
