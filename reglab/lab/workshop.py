"""The notebooks' one helper: each action does the work through reglab AND prints the ``docker``
command that does the same, so learners see both.

    ws = Workshop.setup()            # engine, images, port and folder from the environment
    reg = ws.up("local")             # $ docker run -d ... registry:2
    ws.tag("hello-world", reg.ref("hello-world"))
    digest = ws.push(reg.ref("hello-world"))
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from .. import images, transfer
from ..certs import Certificate
from ..config import RegistryConfig, Stage
from ..container import Registry
from ..engine import EngineInfo, connect
from ..errors import ReglabError
from ..htpasswd import DEFAULT_COST, Htpasswd
from ..login import Credentials, login, logout
from ..network import NETWORK, project_network, remove_project_network
from ..refs import is_local_name
from ..settings import Settings
from ..trust import docker_ca_path, install_ca_for_docker, uninstall_ca_for_docker
from .display import for_display, one_line_errors


def cli(command: str) -> None:
    """Show the equivalent command line."""
    print(f"$ {command}")


@dataclass
class Workshop:
    """Settings shared by a notebook's cells, and the actions they run."""

    engine: docker.DockerClient
    settings: Settings = field(default_factory=Settings.from_env)
    registry: Registry | None = None
    _refs: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def workdir(self) -> Path:
        return self.settings.workdir

    @property
    def name(self) -> str:
        return self.settings.name

    @classmethod
    def setup(cls) -> Workshop:
        """Connect to the engine and make sure the images exist (built offline if needed).

        The settings come from the environment (``REGLAB_PORT``, ``REGLAB_WORKDIR``, ...).
        """
        one_line_errors()
        ws = cls(connect())
        how = images.ensure_images(
            ws.engine, offline=ws.settings.offline, progress=for_display("images")
        )
        print(f"Docker engine {EngineInfo.of(ws.engine).version} answers")
        for ref in how:
            print(f"image {ref} is available")
        print(f"registry port: {ws.port}, working folder: {ws.workdir}")
        return ws

    def config(self, stage: str | Stage, **kwargs: Any) -> RegistryConfig:
        return RegistryConfig(
            stage=Stage.parse(stage), port=self.port, workdir=self.workdir, name=self.name, **kwargs
        )

    def up(self, stage: str | Stage, **kwargs: Any) -> Registry:
        """Start (or replace) the stage's registry; return once ``GET /v2/`` answers."""
        config = self.config(stage, **kwargs)
        cli(config.docker_run_command())
        self.registry = Registry(config, self.engine).start()
        print(f"registry {config.name} answers at {self.registry.url}")
        return self.registry

    def certificate(self, stage: str | Stage = "tls", **kwargs: Any) -> Certificate:
        """Issue (or reuse) the registry's certificate and show what is in it."""
        config = self.config(stage, **kwargs)
        paths = config.paths
        cli(
            f"openssl req ... -addext 'subjectAltName={_san_list(config.cert_names)}' "
            f"-keyout {paths.server_key} -out {paths.server_cert}   # full command above"
        )
        cert = paths.server_certificate(config.cert_names)
        for key, value in cert.describe().items():
            print(f"{key:>18}: {', '.join(value) if isinstance(value, list) else value}")
        return cert

    def network(self) -> str:
        """The workshop's own Docker network; return its gateway (a non-loopback address)."""
        cli(f"docker network create {NETWORK}")
        gateway = project_network(self.engine)
        print(f"gateway address of {NETWORK}: {gateway}")
        return gateway

    def trust_ca(self, host: str) -> None:
        """Make Docker trust the workshop CA for HOST:PORT (no daemon restart needed)."""
        ca = self.config("tls").paths.ca_cert
        target = docker_ca_path(host, self.port)
        cli(f"sudo mkdir -p {target.parent} && sudo cp {ca} {target}")
        install_ca_for_docker(ca, host, self.port)
        print(f"Docker now trusts the workshop CA for {host}:{self.port}")

    def untrust_ca(self, host: str) -> None:
        target = docker_ca_path(host, self.port)
        cli(f"sudo rm {target} && sudo rmdir {target.parent}")
        uninstall_ca_for_docker(host, self.port)

    def remove_network(self) -> None:
        cli(f"docker network rm {NETWORK}")
        remove_project_network(self.engine)

    def add_user(self, credentials: Credentials, cost: int = DEFAULT_COST) -> None:
        """Add the user to auth/htpasswd (or change their password), with bcrypt."""
        path = self.config("auth").paths.htpasswd
        cli(f"htpasswd -B -C {cost} {path} {credentials.user}   # asks for the password")
        users = Htpasswd.load(path)
        users.set(credentials.user, credentials.password, cost)
        users.save()
        print(f"{credentials.user} is in {path.name} (bcrypt, cost {cost})")

    def storage(self, repository: str = "hello-world") -> dict[str, Any]:
        """What the persistent registry keeps on disk for ``repository``.

        Blobs live once, by digest, under ``blobs/``; a repository holds only links: to its
        layers (and config) under ``_layers/``, and per tag to its manifest.
        """
        paths = self.config("persistent").paths
        cli(f"find {paths.repository(repository)} -name link")
        links = paths.layer_links(repository)
        tag = paths.tag_link(repository, "latest")
        return {
            "repository": repository,
            "layer and config links": len(links),
            "blob files for them": sum(
                paths.blob(link.read_text().strip()).is_file() for link in links
            ),
            "tag latest": tag.read_text().strip() if tag.exists() else None,
        }

    def tag(self, source: str, target: str) -> None:
        cli(f"docker tag {source} {target}")
        transfer.tag(self.engine, source, target)
        if is_local_name(target):  # never clean up hello-world
            self._refs.append(target)

    def push(self, ref: str, credentials: Credentials | None = None) -> str:
        return self._transfer("push", ref, credentials)

    def pull(self, ref: str, credentials: Credentials | None = None) -> str:
        return self._transfer("pull", ref, credentials)

    def _transfer(self, action: str, ref: str, credentials: Credentials | None) -> str:
        """``docker push`` or ``docker pull``, with a progress bar; return the digest."""
        cli(f"docker {action} {ref}")
        call = transfer.push if action == "push" else transfer.pull
        auth = credentials.auth_config() if credentials else None
        digest = call(self.engine, ref, progress=for_display(action), auth=auth)
        print(f"{action}ed {ref}: digest {digest}")
        if action == "pull" and is_local_name(ref):
            self._refs.append(ref)
        return digest

    def rmi(self, *refs: str) -> None:
        cli(f"docker rmi {' '.join(refs)}")
        for ref in refs:
            transfer.remove(self.engine, ref)

    def try_push(self, ref: str, credentials: Credentials | None = None) -> str | None:
        """Push, expecting a refusal: show and return the engine's error (None if it worked)."""
        try:
            self.push(ref, credentials)
        except ReglabError as exc:
            print(f"refused: {exc.problem}")
            return exc.problem
        return None

    def login(self, credentials: Credentials, registry: Registry | None = None) -> None:
        address = (registry or self._current()).address
        cli(f"docker login {address} --username {shlex.quote(credentials.user)} --password-stdin")
        print(login(self.engine, address, credentials))

    def logout(self, registry: Registry | None = None) -> None:
        address = (registry or self._current()).address
        cli(f"docker logout {address}")
        logout(self.engine, address)
        print(f"credentials for {address} removed")

    def _current(self) -> Registry:
        if self.registry is None:
            raise ReglabError("no registry started in this notebook", "run the ws.up(...) cell")
        return self.registry

    def down(self) -> None:
        """Remove the registry container; its data folder stays."""
        cli(f"docker rm -f {self.name}")
        self._current().remove()

    def cleanup(self, keep_running: bool = False) -> None:
        """Remove the image names this notebook made and, unless kept, the registry container.

        Data in the working folder stays: the next stage builds on it.
        """
        for ref in dict.fromkeys(self._refs):
            transfer.remove(self.engine, ref)
        self._refs.clear()
        if self.registry is None:
            return
        if keep_running:
            print(f"registry {self.name} keeps running at {self.registry.url}")
            return
        self.down()
        print(f"registry {self.name} removed; data stays in {self.workdir}")


def _san_list(names: tuple[str, ...]) -> str:
    """``DNS:localhost,IP:127.0.0.1,...`` as openssl's subjectAltName wants it."""

    def kind(name: str) -> str:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return "DNS"
        return "IP"

    return ",".join(f"{kind(n)}:{n}" for n in names)
