"""The node: a container running Debian's containerd with CRI, as a Kubernetes node's image
side, and crictl to make the kubelet's calls in it.

Its configuration lives in the working folder, ``node/`` (``config.toml``, ``crictl.yaml``
and ``certs.d/``), mounted read-only at :data:`~reglab.base.settings.NODE_CONFIG_DIR`: a
``hosts.toml`` written there is read at the node's next pull, as on a real node. The node
shares the host's network, so ``127.0.0.1:PORT`` is the same registry for the node as for the
learner's engine (a kind node would use its cluster's network instead).

Every action is a :class:`~reglab.engine.spec.Step`-like pair: what a terminal types
(``docker exec NODE crictl ...``, the files written) and what reglab does, which is the same.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from reglab.base.errors import ConfigError, RegistryError, docker_errors
from reglab.base.files import write_atomic
from reglab.base.labels import owner_labels
from reglab.base.settings import NODE_CONFIG_DIR, NODE_IMAGE
from reglab.base.wait import NotYet, poll
from reglab.engine.spec import ContainerSpec, Mount
from reglab.node.config import NodeConfig, crictl_yaml
from reglab.node.hosts import HostsFile, mirror, plain_http, registry_address, trust


@dataclass(frozen=True)
class Pulled:
    """What the node holds after a pull: its id (the config's digest) and its digests."""

    ref: str
    image_id: str
    repo_digests: tuple[str, ...]

    def digest_for(self, repository: str) -> str | None:
        """The manifest digest the node recorded for ``repository`` (``host/name``)."""
        for entry in self.repo_digests:
            name, _, digest = entry.partition("@")
            if name == repository:
                return digest
        return None


@dataclass
class Node:
    """One node container and its folder of configuration."""

    engine: docker.DockerClient
    name: str
    folder: Path
    config: NodeConfig = field(default_factory=NodeConfig)

    # --- what runs ------------------------------------------------------------------------
    def spec(self) -> ContainerSpec:
        return ContainerSpec(
            NODE_IMAGE,
            name=self.name,
            labels=owner_labels(),
            network="host",
            # containerd mounts each snapshot to unpack a layer into it, even with the native
            # snapshotter: "failed to mount .../tmpmounts/...: operation not permitted" without
            # it. Less than --privileged (what kind's nodes run with).
            cap_add=("SYS_ADMIN",),
            mounts=(Mount(self.folder, NODE_CONFIG_DIR, read_only=True),),
        )

    @property
    def container(self) -> Any:
        try:
            return self.engine.containers.get(self.name)
        except docker.errors.NotFound:
            return None

    def write_config(self) -> None:
        (self.folder / "certs.d").mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / "config.toml", self.config.toml().encode(), 0o644)
        write_atomic(self.folder / "crictl.yaml", crictl_yaml(self.config.socket).encode(), 0o644)

    def up(self, timeout: float = 60.0) -> None:
        """Start the node (a previous one of the same name is replaced); return once its CRI
        answers ``crictl info``."""
        self.write_config()
        self.down()
        with docker_errors(f"cannot start the node {self.name}", error=RegistryError):
            self.engine.containers.run(**self.spec().run_kwargs())

        def answers() -> bool | None:
            container = self.container
            if container is not None:
                container.reload()
                if container.status == "exited":
                    logs = container.logs(tail=5).decode(errors="replace").strip()
                    raise RegistryError(
                        f"the node {self.name} exited: {logs.splitlines()[-1:] or ['']}",
                        f"docker logs {self.name}",
                    )
            code, out = self.crictl("info")
            if code != 0:
                raise NotYet(out.strip().splitlines()[-1] if out.strip() else f"exit {code}")
            return True

        poll(f"the node {self.name}'s CRI to answer", answers, timeout=timeout, interval=0.3)

    def down(self) -> bool:
        """Remove the node's container (its images go with it: they live in the container);
        False when there was none."""
        container = self.container
        if container is None:
            return False
        with docker_errors(f"cannot remove the node {self.name}", error=RegistryError):
            container.remove(force=True, v=True)
        return True

    def crictl(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """``docker exec NODE crictl ARGS``: its exit status and output (both streams)."""
        container = self.container
        if container is None:
            raise ConfigError(f"no node {self.name} runs", "reglab node up starts it")
        result = container.exec_run(["crictl", *args], environment=env or {})
        return int(result.exit_code), result.output.decode(errors="replace")

    # --- the registry settings a node reads -------------------------------------------------
    def hosts_file(self, file: HostsFile) -> Path:
        """Write one ``hosts.toml`` under the node's ``certs.d``; return its path."""
        path = self.folder / "certs.d" / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, file.toml().encode(), 0o644)
        return path

    def _ca_in_node(self, namespace: str, ca: Path) -> str:
        """Copy the CA file next to the namespace's ``hosts.toml``; its path as the node sees
        it (a certificate, never a key)."""
        target = self.folder / "certs.d" / namespace / "ca.crt"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca, target)
        return f"{NODE_CONFIG_DIR}/certs.d/{namespace}/ca.crt"

    def trust(self, address: str, ca: Path | None) -> Path:
        """The registry at ``address``: HTTPS verified with ``ca``, or plain HTTP without."""
        address = registry_address(address)
        if ca is None:
            return self.hosts_file(plain_http(address))
        return self.hosts_file(trust(address, self._ca_in_node(address, ca)))

    def mirror(self, via: str, ca: Path | None = None, upstream: str = "docker.io") -> Path:
        """Pulls of ``upstream``'s images go to the registry at ``via`` first."""
        upstream = registry_address(upstream)
        ca_path = self._ca_in_node(upstream, ca) if ca is not None else None
        return self.hosts_file(mirror(via, upstream, ca_path))

    def forget(self, namespace: str) -> None:
        """Remove the settings of one registry host (the node asks it over HTTPS again)."""
        shutil.rmtree(self.folder / "certs.d" / registry_address(namespace), ignore_errors=True)

    # --- the kubelet's calls ------------------------------------------------------------------
    def pull(self, ref: str, login: tuple[str, str] | None = None) -> Pulled:
        """CRI ``PullImage``, as the kubelet makes it (with a pull secret's login); one line
        naming the registry's answer when it fails."""
        env = {"CRICTL_CREDS": f"{login[0]}:{login[1]}"} if login else None
        code, out = self.crictl("pull", ref, env=env)
        if code != 0:
            raise pull_error(ref, out)
        found = self.image(ref)
        if found is None:
            raise RegistryError(
                f"the node pulled {ref} but does not list it", f"docker logs {self.name}"
            )
        return found

    def image(self, ref: str) -> Pulled | None:
        """CRI ``ImageStatus``: what the node holds for ``ref``, None if nothing."""
        code, out = self.crictl("inspecti", "-o", "json", ref)
        if code != 0:
            return None
        status = json.loads(out).get("status") or {}
        return Pulled(ref, str(status.get("id", "")), tuple(status.get("repoDigests") or ()))

    def remove_image(self, ref: str) -> bool:
        """CRI ``RemoveImage``; False when the node had no such image."""
        code, _ = self.crictl("rmi", ref)
        return code == 0


#: What containerd says when a pull fails, and what the learner does about it: the last line
#: of crictl's error names the registry's answer.
PULL_ERRORS = (
    ("server gave HTTP response to HTTPS client",
     "the registry speaks plain HTTP: its hosts.toml names http:// (reglab node trust ADDRESS)"),
    ("certificate signed by unknown authority",
     "the node does not trust the registry's CA: reglab node trust ADDRESS --ca CA_FILE"),
    ("401 Unauthorized",
     "the registry wants a login: a pull secret (reglab node pull REF --user NAME)"),
    ("not found",
     "check the reference: the registry has no such repository or tag"),
)  # fmt: skip


def pull_error(ref: str, output: str) -> RegistryError:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    said = lines[-1] if lines else "(no output)"
    fix = next((fix for needle, fix in PULL_ERRORS if needle in said), "see what crictl said")
    return RegistryError(f"the node could not pull {ref}: {said[-300:]}", fix)


__all__ = ["Node", "PULL_ERRORS", "Pulled", "pull_error"]
