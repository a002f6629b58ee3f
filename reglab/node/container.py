"""The node: a container running Debian's containerd with CRI, as a Kubernetes node's image
side, and crictl to make the kubelet's calls in it.

Its containerd configuration is in its image (:mod:`reglab.images.nodeconfig`); the folder of
``hosts.toml`` files, ``node/certs.d`` in the working folder, is mounted read-only at
``/etc/reglab-node/certs.d``: a file written there is read at the node's next pull, with no
restart, as on a real node. The node shares the host's network, and its ``/etc/hosts`` names
this machine :data:`REGISTRY_HOST`: the node reaches the workshop's registry by a DNS name,
as a cluster's nodes do, where the learner's engine uses ``127.0.0.1``. (containerd, like
Docker, reaches ``localhost`` and loopback addresses over plain HTTP on its own, never
resolving a name to decide: a name gets HTTPS.)

Every action is a :class:`~reglab.engine.spec.Step`: the lines a terminal types
(``docker exec NODE crictl ...``, ``printf ... > hosts.toml``) and what reglab does, the same.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from reglab.auth.htpasswd import password_variable
from reglab.base.errors import ConfigError, RegistryError, docker_errors
from reglab.base.files import write_atomic
from reglab.base.labels import owner_labels
from reglab.base.refs import named_registry, parse_reference
from reglab.base.settings import NODE_IMAGE
from reglab.base.shell import PathStyle, printf_line, show_path
from reglab.base.wait import NotYet, poll
from reglab.engine.spec import ContainerSpec, Mount, Step
from reglab.images.nodeconfig import HOSTS_DIR, POD_FILE
from reglab.node.hosts import HostsFile, mirror, plain_http, registry_address, trust

#: The name the node's /etc/hosts gives this machine (``.test`` is reserved for names that
#: resolve nowhere else, RFC 2606): the node pulls ``registry.reglab.test:PORT/...``.
REGISTRY_HOST = "registry.reglab.test"
#: crictl reads a pull secret's login from this variable (``crictl pull --creds`` would put
#: it on the command line, in the shell's history).
CREDS_VARIABLE = "CRICTL_CREDS"


@dataclass(frozen=True)
class Pulled:
    """What the node holds after a pull: its id (the config's digest) and its digests."""

    ref: str
    image_id: str
    repo_digests: tuple[str, ...]

    @property
    def digest(self) -> str | None:
        """The manifest digest the node recorded for the reference it pulled."""
        host, repository, _ = parse_reference(self.ref)
        return self.digest_for(f"{host}/{repository}")

    def digest_for(self, repository: str) -> str | None:
        """The manifest digest the node recorded for ``repository`` (``host/name``)."""
        for entry in self.repo_digests:
            name, _, digest = entry.partition("@")
            if name == repository:
                return digest
        return None


@dataclass
class Node:
    """One node container and its folder of ``hosts.toml`` files (``FOLDER/certs.d``)."""

    engine: docker.DockerClient
    name: str
    folder: Path

    @property
    def hosts_dir(self) -> Path:
        return self.folder / "certs.d"

    # --- what runs ------------------------------------------------------------------------
    def spec(self) -> ContainerSpec:
        return ContainerSpec(
            NODE_IMAGE,
            name=self.name,
            labels=owner_labels(),
            network="host",
            # containerd mounts each snapshot to unpack a layer into it, even with the native
            # snapshotter: "failed to mount .../tmpmounts/...: operation not permitted" without
            # it. Less than --privileged (what kind's nodes run with, to run pods too).
            cap_add=("SYS_ADMIN",),
            extra_hosts=((REGISTRY_HOST, "127.0.0.1"),),
            mounts=(Mount(self.hosts_dir, HOSTS_DIR, read_only=True),),
        )

    @property
    def container(self) -> Any:
        try:
            return self.engine.containers.get(self.name)
        except docker.errors.NotFound:
            return None

    def up(self, style: PathStyle | None = None, timeout: float = 60.0) -> Step[None]:
        """Start the node (a previous one of the same name is replaced); done once its CRI
        answers ``crictl info``."""
        lines = [f"mkdir -p {show_path(self.hosts_dir, style)}"]
        if self.container is not None:
            lines.append(f"docker rm -f {self.name}")
        lines.append(self.spec().shell(style))

        def start() -> None:
            self.hosts_dir.mkdir(parents=True, exist_ok=True)
            self._remove()
            with docker_errors(f"cannot start the node {self.name}", error=RegistryError):
                self.engine.containers.run(**self.spec().run_kwargs())
            poll(
                f"the node {self.name}'s CRI to answer",
                self._answers,
                timeout=timeout,
                interval=0.3,
            )

        return Step(lines, start)

    def _answers(self) -> bool:
        container = self.container
        if container is not None:
            container.reload()
            if container.status == "exited":
                said = container.logs(tail=5).decode(errors="replace").strip().splitlines()
                raise RegistryError(
                    f"the node {self.name} exited: {said[-1] if said else '(no output)'}",
                    f"docker logs {self.name}",
                )
        code, out = self.crictl("info")
        if code != 0:
            raise NotYet(out.strip().splitlines()[-1] if out.strip() else f"exit {code}")
        return True

    def down(self) -> Step[bool]:
        """Remove the node's container: its images and containerd's state live in it, so
        nothing of the node is left (its ``hosts.toml`` files stay in the working folder)."""
        return Step([f"docker rm -f {self.name}"], self._remove)

    def _remove(self) -> bool:
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

    def crictl_line(self, *args: str, creds: str | None = None) -> str:
        """The ``docker exec`` line of a crictl call; with ``creds`` (as typed, such as
        ``"moby:$PASSWORD_MOBY"``), the pull secret's login in ``CRICTL_CREDS`` for that one
        command (``-e NAME`` passes the variable: no password on docker's command line)."""
        call = f"docker exec {self.name} crictl "
        if creds is not None:
            call = f"{CREDS_VARIABLE}={creds} docker exec -e {CREDS_VARIABLE} {self.name} crictl "
        return call + " ".join(shlex.quote(a) for a in args)

    # --- the registry settings a node reads -------------------------------------------------
    def write_hosts(self, file: HostsFile, style: PathStyle | None = None) -> Step[Path]:
        """One ``hosts.toml`` under the node's ``certs.d`` (made ready, then renamed in)."""
        path = self.hosts_dir / file.path
        text = file.toml()

        def write() -> Path:
            path.parent.mkdir(parents=True, exist_ok=True)
            return write_atomic(path, text.encode(), 0o644)

        lines = [f"mkdir -p {show_path(path.parent, style)}"]
        lines.append(printf_line(text, show_path(path, style)))
        return Step(lines, write)

    def trust(
        self, address: str, ca: Path | None = None, style: PathStyle | None = None
    ) -> Step[Path]:
        """The registry at ``address``: HTTPS verified with the CA file ``ca``, or plain HTTP
        without one. The CA is copied next to its ``hosts.toml``, where the node reads it."""
        address = registry_address(address)
        if ca is None:
            return self.write_hosts(plain_http(address), style)
        step = self.write_hosts(trust(address, "ca.crt"), style)  # beside it
        return self._with_ca(step, address, ca, style)

    def mirror(
        self,
        via: str,
        ca: Path | None = None,
        upstream: str = "docker.io",
        style: PathStyle | None = None,
    ) -> Step[Path]:
        """Pulls of ``upstream``'s images go to the registry at ``via``, and only there (no
        fallback to the upstream: nothing leaves this machine)."""
        upstream = registry_address(upstream)
        node_ca = "ca.crt" if ca is not None else None  # beside the file
        step = self.write_hosts(mirror(via, upstream, node_ca, fallback=False), style)
        if ca is None:
            return step
        return self._with_ca(step, upstream, ca, style)

    def _with_ca(
        self, step: Step[Path], namespace: str, ca: Path, style: PathStyle | None
    ) -> Step[Path]:
        check_certificate(ca)  # before any line is shown or file written
        target = self.hosts_dir / namespace / "ca.crt"
        copy = f"cp {show_path(ca, style)} {show_path(target, style)}"

        def write() -> Path:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, ca.read_bytes(), 0o644)
            return step.action()

        return Step([step.lines[0], copy, *step.lines[1:]], write)

    def forget(self, namespace: str, style: PathStyle | None = None) -> Step[None]:
        """Remove the settings of one registry host: the node asks it over HTTPS again, with
        only the system's CAs."""
        folder = self.hosts_dir / registry_address(namespace)
        return Step(
            [f"rm -r {show_path(folder, style)}"], lambda: shutil.rmtree(folder, ignore_errors=True)
        )

    # --- the kubelet's calls ------------------------------------------------------------------
    def pull(
        self, ref: str, login: tuple[str, str] | None = None, shown: str | None = None
    ) -> Step[Pulled]:
        """CRI ``PullImage``, as the kubelet makes it (with a pull secret's login); one line
        naming the registry's answer when it fails. ``shown``: the login as the line types it
        (default: ``"USER:$PASSWORD_USER"``, never the password)."""
        registry_of(ref)
        if login is not None and shown is None:
            shown = f'"{login[0]}:${password_variable(login[0])}"'

        def pull() -> Pulled:
            env = {CREDS_VARIABLE: f"{login[0]}:{login[1]}"} if login else None
            code, out = self.crictl("pull", ref, env=env)
            if code != 0:
                raise pull_error(ref, out)
            found = self.image(ref)
            if found is None:
                raise RegistryError(
                    f"the node pulled {ref} but does not list it", f"docker logs {self.name}"
                )
            return found

        return Step([self.crictl_line("pull", ref, creds=shown if login else None)], pull)

    def image(self, ref: str) -> Pulled | None:
        """CRI ``ImageStatus``: what the node holds for ``ref``, None if nothing."""
        code, out = self.crictl("inspecti", "-o", "json", ref)
        if code != 0:
            return None
        status = json.loads(out).get("status") or {}
        return Pulled(ref, str(status.get("id", "")), tuple(status.get("repoDigests") or ()))

    def run_pod(self) -> Step[str | None]:
        """CRI ``RunPodSandbox`` of the image's ``pod.json``, as the kubelet starts a pod: the
        first thing it needs is the sandbox (``pause``) image. None when the pod started (it is
        then removed again), else containerd's reason, on one line."""

        def run() -> str | None:
            code, out = self.crictl("runp", POD_FILE)
            if code == 0:
                pod = out.strip().splitlines()[-1]
                self.crictl("stopp", pod)
                self.crictl("rmp", pod)
                return None
            return cause(out)

        return Step([self.crictl_line("runp", POD_FILE)], run)

    def remove_image(self, ref: str) -> Step[bool]:
        """CRI ``RemoveImage``; False when the node had no such image."""
        return Step([self.crictl_line("rmi", ref)], lambda: self.crictl("rmi", ref)[0] == 0)


def node_of(engine: docker.DockerClient, name: str, workdir: Path) -> Node:
    """The node of the registry ``name`` (``NAME-node``), its files in ``WORKDIR/node``."""
    return Node(engine, f"{name}-node", Path(workdir) / "node")


def registry_of(ref: str) -> str:
    """The registry a reference names; one line when it names none (a node would ask Docker
    Hub: ``hello-world`` is ``docker.io/library/hello-world``)."""
    named = named_registry(ref)
    if named is None:
        raise ConfigError(
            f"{ref!r} names no registry: a node would ask docker.io for it",
            f"write the registry first, e.g. {REGISTRY_HOST}:5000/{ref}",
        )
    return named


def check_certificate(path: Path) -> None:
    """One line when ``path`` is not a PEM certificate (a key, a typo, an empty file): the
    node would otherwise fail each pull with a TLS error far from the cause."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CA file {path}: {exc.strerror}", "name a CA file that exists"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(
            f"{path} is not a certificate (no BEGIN CERTIFICATE)",
            "give the CA's certificate, e.g. workdir/certs/ca.crt, never its key",
        )


#: What containerd says when a pull fails, and what the learner does about it: the last line
#: of crictl's error names the registry's answer.
PULL_ERRORS = (
    ("server gave HTTP response to HTTPS client",
     "the registry speaks plain HTTP: its hosts.toml names http:// (reglab node trust ADDRESS)"),
    ("certificate signed by unknown authority",
     "the node does not trust the registry's CA: reglab node trust ADDRESS --ca CA_FILE"),
    ("400 Bad Request",
     "plain HTTP to a TLS port? hosts.toml says http://: reglab node trust ADDRESS --ca CA"),
    ("insufficient_scope",
     "the token grants no pull: the access list (auth/acl.yml) decides, user by repository"),
    ("401 Unauthorized",
     "the registry wants a login: a pull secret (reglab node pull REF --user NAME)"),
    ("connection refused",
     "nothing answers at that address: is the registry running, on that port?"),
    ("not found",
     "check the reference: the registry has no such repository or tag"),
)  # fmt: skip


#: The wrapping containerd puts around the cause, each naming the reference again.
_WRAPPING = re.compile(
    r"^(pulling image: |run pod sandbox: )?(rpc error: code = \w+ desc = )?"
    r'(failed to pull and unpack image "[^"]*": )?(failed to resolve reference "[^"]*": )?'
)


def cause(output: str) -> str:
    """crictl's last line of error, as containerd's cause without its wrapping."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    said = lines[-1] if lines else "(no output)"
    found = re.search(r'msg="((?:[^"\\]|\\.)*)"', said)
    if found:
        said = found.group(1).replace('\\"', '"')
    return _WRAPPING.sub("", said)


def pull_error(ref: str, output: str) -> RegistryError:
    """One line from crictl's error: containerd's cause, and the fix."""
    said = cause(output)
    fix = next((fix for needle, fix in PULL_ERRORS if needle in said), "see what crictl said")
    return RegistryError(f"the node could not pull {ref}: {said[-300:]}", fix)


__all__ = [
    "CREDS_VARIABLE",
    "Node",
    "PULL_ERRORS",
    "Pulled",
    "REGISTRY_HOST",
    "cause",
    "check_certificate",
    "node_of",
    "pull_error",
    "registry_of",
]
