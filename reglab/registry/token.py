"""The token stage's token server, as a container beside the registry.

The server itself is :mod:`reglab.auth.tokenserver` with :mod:`reglab.auth.acl` (the two files
the ``reglab-token`` image runs).
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

from pathlib import Path

import docker
import docker.errors

from reglab.auth.acl import AclError, Rule, load_acl
from reglab.auth.htpasswd import Htpasswd
from reglab.base.errors import (
    ConfigError,
    HtpasswdError,
    PortInUse,
    RegistryError,
    docker_errors,
)
from reglab.base.files import write_atomic
from reglab.base.labels import owner_labels
from reglab.base.settings import TOKEN_IMAGE
from reglab.base.shell import PathStyle
from reglab.engine.connection import port_problem
from reglab.engine.spec import INVOKER, ContainerSpec, Mount
from reglab.engine.transfer import exists
from reglab.registry.client import probe_status
from reglab.registry.companion import Companion, remove_owned
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
    return remove_owned(engine, f"{registry_name}-token")


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


class TokenServer(Companion):
    """The token server of one token-stage registry."""

    what = "the token server"

    def __init__(self, config: RegistryConfig, engine: docker.DockerClient) -> None:
        if not config.stage.token or config.token_port is None:
            raise ConfigError("a token server belongs to the token stage", "reglab up token")
        super().__init__(engine, token_server_name(config))
        self.config = config

    @property
    def url(self) -> str:
        return self.config.realm

    def mounts(self) -> tuple[Mount, ...]:
        paths = self.config.paths
        return tuple(
            Mount(host, target, read_only=True)
            for host, target in (
                (paths.htpasswd.parent, "/auth"),
                (paths.token_key, "/certs/token.key"),
                (paths.token_cert, "/certs/token.crt"),
                (paths.server_cert, "/certs/domain.crt"),
                (paths.server_key, "/certs/domain.key"),
            )
        )

    def arguments(self) -> list[str]:
        return [
            "--listen", f"0.0.0.0:{SERVER_PORT}", "--htpasswd", "/auth/htpasswd",
            "--acl", "/auth/acl.yml", "--signing-key", "/certs/token.key",
            "--signing-cert", "/certs/token.crt", "--tls-cert", "/certs/domain.crt",
            "--tls-key", "/certs/domain.key", "--issuer", TOKEN_ISSUER, "--service", TOKEN_SERVICE,
        ]  # fmt: skip

    def spec(self) -> ContainerSpec:
        """The token server's container, run by reglab and shown as its ``docker run`` line.
        It runs as the user: the key files are theirs, mode 0600."""
        return ContainerSpec(
            TOKEN_IMAGE,
            tuple(self.arguments()),
            name=self.name,
            labels=owner_labels(),
            ports=(("127.0.0.1", self.config.token_port or 0, SERVER_PORT),),
            mounts=self.mounts(),
            user=INVOKER,
            wrap=True,
        )

    def docker_run_command(self, style: PathStyle | None = None) -> str:
        return self.spec().shell(style)

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
                "choose another registry port (the token server takes the one after it)",
            )
        if not exists(self.engine, TOKEN_IMAGE):
            raise RegistryError(
                f"image {TOKEN_IMAGE} is not present", "run 'reglab images --stage token'"
            )
        with docker_errors("the token server could not start", error=RegistryError):
            self.engine.containers.run(**self.spec().run_kwargs())
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll an anonymous token request (verified with the workshop CA) until it answers."""
        ca = str(self.config.paths.ca_cert)
        self.wait_answering(
            self.url,
            lambda: probe_status(self.url, verify=ca, params={"service": TOKEN_SERVICE}),
            (200,),
            timeout,
        )


__all__ = [
    "DEFAULT_ACL",
    "TokenServer",
    "check_acl",
    "remove_token_server",
    "token_server_name",
    "use_acl",
]
