"""Notebook 11: a Kubernetes node's view of the registry, each step with its command.

from reglab.lab import nodes
ws = nodes.setup()                              # the node's images too
node = nodes.up(ws)                             # $ docker run -d ... reglab-node:1
nodes.trust(ws, node, address)                  # $ printf ... > .../certs.d/HOST:PORT/hosts.toml
pulled = nodes.pull(ws, node, ref)              # $ docker exec NODE crictl pull REF
error = nodes.try_pull(ws, node, ref)           # the same, expecting containerd's refusal
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from reglab.base.errors import ReglabError
from reglab.base.refs import parse_reference
from reglab.images.nodeconfig import PAUSE_IMAGE
from reglab.lab.access import write_acl
from reglab.lab.checks.failed import CheckFailed
from reglab.lab.exercises.verdict import letter, verdict
from reglab.lab.workshop import Workshop
from reglab.node import cluster
from reglab.node.container import REGISTRY_HOST, Node, Pulled, node_of
from reglab.node.hosts import ALL, Host, HostsFile
from reglab.registry.container import Registry
from reglab.registry.login import Credentials
from reglab.registry.token import DEFAULT_ACL, TokenServer


def setup() -> Workshop:
    """:meth:`Workshop.setup` with the node's images (Debian's containerd, crictl)."""
    return Workshop.setup("node")


def address(ws: Workshop) -> str:
    """The registry as the node names it: by DNS name, as a cluster's nodes do."""
    return f"{REGISTRY_HOST}:{ws.port}"


def up(ws: Workshop) -> Node:
    """Start a fresh node: no registry settings yet (an earlier run's files go first)."""
    node = node_of(ws.engine, ws.name, ws.workdir)
    if node.hosts_dir.is_dir() and any(node.hosts_dir.iterdir()):
        ws.cli(f"rm -r {ws.style.show(node.hosts_dir)}")
        for entry in sorted(node.hosts_dir.rglob("*"), reverse=True):
            entry.rmdir() if entry.is_dir() else entry.unlink()
    node.up(ws.style).run(ws.cli)
    print(f"node {node.name}: containerd answers on its CRI socket")
    return node


def show_file(ws: Workshop, node: Node, path: str) -> str:
    """``docker exec NODE cat PATH``: a file as the node sees it."""
    ws.cli(f"docker exec {node.name} cat {path}")
    container = node.container
    text = container.exec_run(["cat", path]).output.decode() if container is not None else ""
    print(text.rstrip("\n"))
    return text


def reads_hosts_toml(ws: Workshop, node: Node) -> str:
    """What the node's CRI says it reads registries from (``crictl info``)."""
    ws.cli(f"docker exec {node.name} crictl info | grep configPath")
    code, out = node.crictl("info")
    path = json.loads(out).get("config", {}).get("registry", {}).get("configPath", "")
    print(f'    "configPath": "{path}",')
    return str(path)


def trust(ws: Workshop, node: Node, host: str, ca: Path | None = None) -> Path:
    """Write the node's ``hosts.toml`` for ``host`` (and copy the CA), then show it."""
    path = node.trust(host, ca, ws.style).run(ws.cli)
    ws.cli(f"cat {ws.style.show(path)}")
    print(path.read_text().rstrip("\n"))
    return path


def forget(ws: Workshop, node: Node, host: str) -> None:
    """Remove the node's settings for ``host`` (its folder under certs.d)."""
    node.forget(host, ws.style).run(ws.cli)


def mirror(ws: Workshop, node: Node, upstream: str, via: str) -> Path:
    """Pulls of ``upstream``'s images go to ``via`` (no fallback: nothing leaves the machine)."""
    path = node.mirror(via, None, upstream, ws.style).run(ws.cli)
    ws.cli(f"cat {ws.style.show(path)}")
    print(path.read_text().rstrip("\n"))
    return path


def pull(
    ws: Workshop, node: Node, ref: str, login: Credentials | None = None, shown: str | None = None
) -> Pulled:
    """``crictl pull`` in the node: CRI's PullImage; print the digest the node recorded."""
    step = node.pull(ref, login.as_tuple() if login else None, shown)
    pulled = step.run(ws.cli)
    print(f"the node pulled {ref}: digest {pulled.digest}")
    return pulled


def try_pull(
    ws: Workshop, node: Node, ref: str, login: Credentials | None = None, shown: str | None = None
) -> str | None:
    """A pull expected to fail: show and return containerd's reason (None if it worked)."""
    try:
        pull(ws, node, ref, login, shown)
    except ReglabError as exc:
        print(f"refused: {exc.problem}")
        return exc.problem
    return None


def try_wrong_password(ws: Workshop, node: Node, ref: str, login: Credentials) -> str | None:
    """A pull with ``login``'s user and a wrong password (typed as it is: it is no secret)."""
    wrong = "not-the-password"
    return try_pull(ws, node, ref, Credentials(login.user, wrong), f"{login.user}:{wrong}")


def remove_image(ws: Workshop, node: Node, ref: str) -> None:
    node.remove_image(ref).run(ws.cli)


def requests_with(ws: Workshop, registry: Registry, needle: str) -> list[str]:
    """The requests in the registry's access log with ``needle`` in their path (what the node
    asked it), each once: ``HEAD /v2/...?ns=docker.io``."""
    ws.cli(f"docker logs {registry.config.name} 2>&1 | grep -F '{needle}' | grep -F HTTP/1.1")
    asked = re.findall(r'"([A-Z]+ /v2/\S+) HTTP/1\.1"', registry.logs(tail=5000))
    found = list(dict.fromkeys(line for line in asked if needle in line))
    for line in found:
        print(line)
    return found


def mirror_down(ws: Workshop, node: Node, registry: Registry, ref: str) -> str | None:
    """Stop the mirror, pull through it (containerd's reason), start it again."""
    container = registry.container
    if container is None:
        raise CheckFailed(f"no registry {registry.config.name} runs", "run Step 2 again")
    ws.cli(f"docker stop {registry.config.name}")
    container.stop(timeout=10)
    try:
        return try_pull(ws, node, ref)
    finally:
        ws.cli(f"docker start {registry.config.name}")
        container.start()
        registry.wait_ready()


def example_access_list(ws: Workshop) -> None:
    """Write reglab's example access list (notebook 08's first) to ``auth/acl.yml``, whatever
    an earlier notebook left there: ``alice`` may pull ``team/*``, ``bob`` push there."""
    write_acl(ws, DEFAULT_ACL)


def token_grants(ws: Workshop, registry: Registry, user: str) -> list[str]:
    """What the token server last granted ``user`` (its log's ``token for USER: ...`` line)."""
    server = TokenServer(registry.config, ws.engine)
    ws.cli(f"docker logs {server.name} 2>&1 | grep 'token for {user}:' | tail -1")
    container = server.container
    said = container.logs().decode(errors="replace") if container is not None else ""
    lines = [line for line in said.splitlines() if f"token for {user}:" in line]
    if not lines:
        print(f"(no token for {user} in the log)")
        return []
    print(lines[-1].split(" ", 1)[-1][:200])
    granted = lines[-1].split(f"token for {user}:", 1)[1].split()
    return [] if granted == ["nothing"] else granted


def run_pod(ws: Workshop, node: Node) -> str | None:
    """Start a pod's sandbox as the kubelet does; containerd's reason when it cannot."""
    said = node.run_pod().run(ws.cli)
    print("the pod's sandbox started" if said is None else f"refused: {said}")
    return said


def sandbox_image(ws: Workshop, node: Node) -> str:
    """The sandbox image the node's containerd is configured with."""
    ws.cli(f"docker exec {node.name} crictl info | grep sandboxImage")
    code, out = node.crictl("info")
    image = str(json.loads(out).get("config", {}).get("sandboxImage", ""))
    print(f'    "sandboxImage": "{image}",')
    return image


def real_cluster(ws: Workshop) -> None:
    """The same settings on a real cluster: kind's patch, k3s's file, the KEP-1755 ConfigMap,
    and the CRI section names of containerd 1.6/1.7 and 2.x."""
    host = address(ws)
    print("# kind: containerdConfigPatches in the cluster's config (then certs.d on each node)")
    print(cluster.kind_config())
    print("# k3s: /etc/rancher/k3s/registries.yaml on every node (read when k3s starts)")
    print(
        cluster.k3s_registries(host, "/etc/rancher/k3s/reglab-ca.crt", login=("moby", "PASSWORD"))
    )
    print("# every cluster: where tools find the local registry (KEP-1755)")
    print(cluster.local_registry_hosting(f"127.0.0.1:{ws.port}", from_runtime=host))
    print("# a node whose config.toml says version = 3 (kind's nodes still say version = 2)")
    print(cluster.kind_config(version=3))


def skip_verify_file(ws: Workshop) -> str:
    """The ``hosts.toml`` that turns verification off for the registry: shown, never written."""
    url = f"https://{address(ws)}"
    text = HostsFile(address(ws), url, (Host(url, ALL, skip_verify=True),)).toml()
    print(f"# certs.d/{address(ws)}/hosts.toml (not written: the last resort)")
    print(text.rstrip("\n"))
    return text


def pull_secret(ws: Workshop, login: Credentials) -> str:
    """The Secret a pod names in ``imagePullSecrets`` (``PASSWORD`` where the password goes)."""
    text = cluster.pull_secret("regcred", address(ws), login.user, "PASSWORD")
    print(text.rstrip("\n"))
    return text


def cleanup(ws: Workshop, node: Node | None, keep_running: bool = False) -> None:
    """Remove the node (its images and containerd's state are in it) and its folder of
    ``hosts.toml`` files, then the registry and the image names, as every notebook does."""
    if node is not None and not keep_running:
        node.down().run(ws.cli)
        if node.folder.is_dir():  # its hosts.toml files: the next run starts a fresh node
            ws.cli(f"rm -r {ws.style.show(node.folder)}")
            shutil.rmtree(node.folder)
        print(f"node {node.name} removed, with every image it pulled and its hosts.toml files")
    ws.cleanup(keep_running=keep_running)


# --- exercises -------------------------------------------------------------------------------
PLAIN_HTTP_CHOICES = {
    "a": "the pull works: the registry answers on that port",
    "b": "http: server gave HTTP response to HTTPS client",
    "c": "x509: certificate signed by unknown authority",
    "d": "401 Unauthorized",
}


def predicted_plain_http(answer: object) -> bool:
    """Exercise 1: what does the node say when it pulls the plain-HTTP registry by name?"""
    return verdict(
        letter(answer) == "b",
        "containerd asks every registry over HTTPS unless its hosts.toml says http:// (its only "
        "exception is localhost and loopback addresses, and it never resolves a name to "
        "decide); the registry answers the TLS hello in plain HTTP",
        "Docker needed insecure-registries for this in notebook 01; the node reads none of "
        "Docker's settings. Which protocol does it try first?",
    )


def sandbox_served(node: Node, registry: Registry) -> bool:
    """Exercise 2: does a pod get past its sandbox image now? The node must hold
    ``registry.k8s.io/pause:3.10`` with the digest your registry serves for ``pause:3.10``."""
    _, repository, tag = parse_reference(PAUSE_IMAGE)
    try:
        with registry.client() as api:
            served = api.manifest_digest(repository, tag)
    except ReglabError:
        return verdict(False, "", f"your registry has no {repository}:{tag} yet: the node asks "
                       f"it for /v2/{repository}/manifests/{tag}?ns=registry.k8s.io")  # fmt: skip
    said = node.run_pod().run()
    if said is not None and "sandbox image" in said:
        return verdict(False, "", f"the pod still stops at its sandbox image: {said[:160]}")
    held = node.image(PAUSE_IMAGE)
    digest = held.digest if held else None
    return verdict(
        digest == served,
        f"the node pulled {PAUSE_IMAGE} through your registry ({served}); the pod "
        f"now stops at {said[:80] if said else 'nothing'}",
        "the node holds another pause image than your registry's: pull it again",
    )


__all__ = [
    "PLAIN_HTTP_CHOICES", "REGISTRY_HOST", "address", "cleanup", "example_access_list",
    "forget", "mirror", "mirror_down", "predicted_plain_http", "pull", "pull_secret",
    "reads_hosts_toml", "real_cluster", "remove_image", "requests_with", "run_pod",
    "sandbox_image", "sandbox_served", "setup", "show_file", "skip_verify_file", "token_grants",
    "trust", "try_pull", "try_wrong_password", "up",
]  # fmt: skip
