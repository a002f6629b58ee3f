"""The token stage's token server, as a container beside the registry.

The server itself is :mod:`reglab.auth.tokenserver` (one file, run by the ``reglab-token`` image).
This module prepares what it reads from the working folder, starts it (``NAME-token``,
published on ``127.0.0.1`` only), waits until it answers, and removes it. Like the registry,
it keeps running after the command that started it.

::

    auth/htpasswd      the users (bcrypt), checked once per token
    auth/acl.yml       the access list (written with :data:`DEFAULT_ACL` when missing)
    certs/token.key    the key that signs tokens, and its certificate from the workshop CA
    certs/token.crt
    certs/domain.crt   the registry's certificate: the token server speaks HTTPS with it too
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import docker
import docker.errors
import requests

from reglab.auth.htpasswd import Htpasswd
from reglab.auth.tokenserver import AclError, Rule, load_acl
from reglab.base.errors import (
    ConfigError,
    HtpasswdError,
    NotOwned,
    PortInUse,
    RegistryError,
    docker_errors,
)
from reglab.base.files import write_atomic
from reglab.base.labels import OWNER_LABEL, is_owned, owner_labels
from reglab.base.settings import TOKEN_IMAGE
from reglab.base.shell import PathStyle
from reglab.engine.connection import port_problem
from reglab.engine.transfer import exists
from reglab.registry.config import TOKEN_ISSUER, TOKEN_SERVICE, RegistryConfig
from reglab.registry.workdir import Workdir

#: The port inside the container.
SERVER_PORT = 5001

#: The access list a new working folder starts with: the rules notebook 08 teaches. The first
#: matching rule decides; "" is the anonymous account.
DEFAULT_ACL = """\
# reglab's access list, in the format of docker_auth (cesanta/docker_auth): the first rule
# that matches the account and the repository decides what is allowed.
- match: {account: admin}
  actions: ["*"]
- match: {account: bob, name: "team/*"}
  actions: [pull, push]
- match: {account: alice, name: "team/*"}
  actions: [pull]
- match: {account: "", name: "public/*"}     # anonymous
  actions: [pull]
"""


def token_server_name(config: RegistryConfig) -> str:
    return f"{config.name}-token"


def remove_token_server(engine: docker.DockerClient, registry_name: str) -> bool:
    """Remove the token server of the registry ``registry_name`` if there is one (reglab's
    only); True when one went."""
    try:
        container = engine.containers.get(f"{registry_name}-token")
    except docker.errors.NotFound:
        return False
    if not is_owned(container.labels):
        return False  # a learner's container of that name: not ours to remove
    with docker_errors(f"cannot remove {registry_name}-token", error=RegistryError):
        container.remove(force=True)
    return True


def check_acl(path: Path) -> list[Rule]:
    """The access list's rules; ConfigError (one line, naming the rule) when it is unusable."""
    try:
        return load_acl(path)
    except AclError as exc:
        raise ConfigError(
            str(exc), f"fix {path.name} (see the README's access-list format)"
        ) from None


def use_acl(paths: Workdir, source: Path | None) -> Path:
    """The working folder's ``auth/acl.yml``: copied from ``source`` when given (after checking
    it: a bad file changes nothing), else written with :data:`DEFAULT_ACL` when missing. The
    token stage's server and the swarm's token service both read it."""
    target = paths.acl
    if source is not None:
        check_acl(source)
        if source.resolve() != target.resolve():
            write_atomic(target, source.read_bytes(), mode=0o644)
    elif not target.exists():
        write_atomic(target, DEFAULT_ACL.encode(), mode=0o644)
    check_acl(target)
    return target


class TokenServer:
    """The token server of one token-stage registry."""

    def __init__(self, config: RegistryConfig, engine: docker.DockerClient) -> None:
        if not config.stage.token or config.token_port is None:
            raise ConfigError("a token server belongs to the token stage", "reglab up token")
        self.config = config
        self.engine = engine
        self.name = token_server_name(config)

    @property
    def url(self) -> str:
        return self.config.realm

    @property
    def container(self) -> docker.models.containers.Container | None:
        try:
            return self.engine.containers.get(self.name)
        except docker.errors.NotFound:
            return None

    def volumes(self) -> dict[str, dict[str, str]]:
        paths = self.config.paths
        return {
            str(paths.htpasswd.parent): {"bind": "/auth", "mode": "ro"},
            str(paths.token_key): {"bind": "/certs/token.key", "mode": "ro"},
            str(paths.token_cert): {"bind": "/certs/token.crt", "mode": "ro"},
            str(paths.server_cert): {"bind": "/certs/domain.crt", "mode": "ro"},
            str(paths.server_key): {"bind": "/certs/domain.key", "mode": "ro"},
        }

    def arguments(self) -> list[str]:
        return [
            "--listen", f"0.0.0.0:{SERVER_PORT}", "--htpasswd", "/auth/htpasswd",
            "--acl", "/auth/acl.yml", "--signing-key", "/certs/token.key",
            "--signing-cert", "/certs/token.crt", "--tls-cert", "/certs/domain.crt",
            "--tls-key", "/certs/domain.key", "--issuer", TOKEN_ISSUER, "--service", TOKEN_SERVICE,
        ]  # fmt: skip

    def docker_run_command(self, style: PathStyle | None = None) -> str:
        style = style or PathStyle(self.config.workdir)
        parts = [
            "docker run -d",
            f"--name {self.name}",
            f"--label {OWNER_LABEL}=true",
            f"-p 127.0.0.1:{self.config.token_port}:{SERVER_PORT}",
            '--user "$(id -u):$(id -g)"',  # the key files are the user's, mode 0600
        ]
        for host, spec in self.volumes().items():
            parts.append(f"-v {style.show(Path(host), mount_to=spec['bind'] + ':ro')}")
        parts.append(TOKEN_IMAGE)
        args = self.arguments()
        parts += [f"{args[i]} {args[i + 1]}" for i in range(0, len(args), 2)]
        return " \\\n  ".join(parts)

    def prepare(self, acl: Path | None = None) -> None:
        """Users, access list and signing certificate in place (the registry's certificate is
        made by the registry's own prepare)."""
        paths = self.config.paths
        if not Htpasswd.load(paths.htpasswd).names():
            raise HtpasswdError(
                f"{paths.htpasswd} has no users",
                "add one: reglab user add NAME --password-stdin",
            )
        use_acl(paths, acl)
        paths.signing_certificate()

    def start(self, acl: Path | None = None, timeout: float = 30.0) -> TokenServer:
        """Start (or replace) the token server; return once it answers over HTTPS."""
        self.prepare(acl)
        paths = self.config.paths
        paths.server_certificate(self.config.cert_names)
        self.remove()
        problem = port_problem(self.engine, self.config.token_port or 0)
        if problem:
            raise PortInUse(
                f"the token server's port {self.config.token_port} is in use",
                "choose another registry port (the token server takes the next one)",
            )
        if not exists(self.engine, TOKEN_IMAGE):
            raise RegistryError(f"image {TOKEN_IMAGE} is not present", "run 'reglab images'")
        with docker_errors("the token server could not start", error=RegistryError):
            self.engine.containers.run(
                TOKEN_IMAGE,
                self.arguments(),
                detach=True,
                name=self.name,
                labels=owner_labels(),
                ports={f"{SERVER_PORT}/tcp": [("127.0.0.1", self.config.token_port)]},
                volumes=self.volumes(),
                user=f"{os.getuid()}:{os.getgid()}",
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll an anonymous token request (verified with the workshop CA) until it answers."""
        deadline = time.monotonic() + timeout
        ca = str(self.config.paths.ca_cert)
        with requests.Session() as session:
            while True:
                try:
                    answer = session.get(
                        self.url, params={"service": TOKEN_SERVICE}, timeout=1, verify=ca
                    )
                    if answer.status_code == 200:
                        return
                except requests.exceptions.RequestException:
                    pass
                container = self.container
                if container is None or container.status in ("exited", "dead"):
                    self._fail("the token server stopped before answering")
                if time.monotonic() > deadline:
                    self._fail(f"the token server did not answer at {self.url} in {timeout:g} s")
                time.sleep(0.02)

    def _fail(self, problem: str) -> None:
        container = self.container
        logs = bytes(container.logs(tail=5)).decode(errors="replace") if container else ""
        last = " | ".join(line for line in logs.splitlines() if line.strip())[-300:]
        raise RegistryError(
            f"{problem}; last log lines: {last or '(none)'}", f"docker logs {self.name}"
        )

    def remove(self) -> bool:
        container = self.container
        if container is not None and not is_owned(container.labels):
            raise NotOwned(
                f"a container named {self.name} exists and was not created by reglab",
                f"remove it yourself (docker rm -f {self.name}) or choose another --name",
            )
        return remove_token_server(self.engine, self.config.name)

    def logs(self, tail: int = 20) -> str:
        container = self.container
        return bytes(container.logs(tail=tail)).decode(errors="replace") if container else ""


__all__ = [
    "DEFAULT_ACL",
    "TokenServer",
    "check_acl",
    "remove_token_server",
    "token_server_name",
    "use_acl",
]
