"""The notebooks' one helper: each action does the work through reglab AND prints the ``docker``
command that does the same, so learners see both.

    ws = Workshop.setup()            # engine, images, port and folder from the environment
    reg = ws.up("local")             # $ docker run -d ... registry:3
    ws.tag("hello-world", reg.ref("hello-world"))
    digest = ws.push(reg.ref("hello-world"))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from reglab.auth.certs import Certificate
from reglab.auth.htpasswd import DEFAULT_COST
from reglab.base.errors import ReglabError
from reglab.base.files import write_atomic
from reglab.base.labels import OWNER_LABEL
from reglab.base.refs import is_local_name
from reglab.base.settings import Settings
from reglab.base.shell import PathStyle, printf_line
from reglab.engine import transfer
from reglab.engine.connection import EngineInfo, connect
from reglab.engine.network import NETWORK, project_network, remove_project_network
from reglab.engine.trust import EngineTrust
from reglab.images import build as images
from reglab.lab.display import for_display, one_line_errors
from reglab.registry.config import RegistryConfig, Stage
from reglab.registry.container import Registry
from reglab.registry.login import Credentials, login, login_command, logout
from reglab.registry.token import DEFAULT_ACL, TokenServer


def cli(command: str) -> None:
    """Show the equivalent command line."""
    print(f"$ {command}")


def image_names_removal(refs: list[str]) -> str:
    """The line that removes every image name at the registry addresses of ``refs`` (the
    names this notebook made, and any a learner typed there): ``docker images`` picks them by
    address, so the line removes what exists and does nothing when nothing does. (Double
    quotes: an address may be a shell variable, such as ``$GATEWAY``.)"""
    hosts = sorted({ref.split("/", 1)[0] for ref in refs})
    filters = " ".join(
        f'--filter "reference={host}/{path}"' for host in hosts for path in ("*", "*/*")
    )
    return (
        f"docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {filters} | xargs -r docker rmi"
    )


@dataclass
class Workshop:
    """Settings shared by a notebook's cells, and the actions they run."""

    engine: docker.DockerClient
    settings: Settings = field(default_factory=Settings.from_env)
    registry: Registry | None = None
    _refs: list[str] = field(default_factory=list)
    #: Values a terminal finds out for itself, written as its shell variables in commands:
    #: {"172.20.0.1": "GATEWAY"} once the network exists (the engine picks the address).
    shell_variables: dict[str, str] = field(default_factory=dict)
    #: The certificate names whose openssl lines this notebook has shown (None: none yet, or
    #: the certificate was replaced since).
    shown_certificate: tuple[str, ...] | None = None
    #: Whether the token-signing certificate's openssl lines were shown.
    shown_signing: bool = False

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def workdir(self) -> Path:
        return self.settings.workdir

    @property
    def name(self) -> str:
        return self.settings.name

    def cli(self, command: str) -> None:
        """Show the equivalent command line, with this terminal's variables in it."""
        for value, name in self.shell_variables.items():
            command = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", f"${name}", command)
        cli(command)

    @property
    def style(self) -> PathStyle:
        """How this notebook's commands write the working folder (see reglab.base.shell)."""
        return PathStyle.here(self.workdir, self.settings.workdir_from_env)

    @classmethod
    def setup(cls, stage: str = "foundation") -> Workshop:
        """Connect to the engine and make sure the images of ``stage`` exist (built offline if
        needed): notebooks 00-07 need the foundation's three, 08 says ``"token"``, 09
        ``"swarm"``, so a learner never waits for (or needs root for) images of a later stage.

        The settings come from the environment (``REGLAB_PORT``, ``REGLAB_WORKDIR``, ...).
        """
        one_line_errors()
        ws = cls(connect())
        how = images.ensure_images(
            ws.engine,
            stage,
            registries=(ws.settings.registry,),
            offline=ws.settings.offline,
            progress=for_display("images"),
            notice=print,
        )
        print(f"Docker engine {EngineInfo.of(ws.engine).version} answers")
        for ref in how:
            print(f"image {ref} is available")
        print(f"registry port: {ws.port}, working folder: {ws.style.show(ws.workdir)}")
        return ws

    def config(self, stage: str | Stage, **kwargs: Any) -> RegistryConfig:
        kwargs.setdefault("version", self.settings.version)
        return RegistryConfig(
            stage=Stage.parse(stage), port=self.port, workdir=self.workdir, name=self.name, **kwargs
        )

    def up(self, stage: str | Stage, **kwargs: Any) -> Registry:
        """Start (or replace) the stage's registry; return once ``GET /v2/`` answers."""
        config = self.config(stage, **kwargs)
        if config.stage.tls and self.shown_certificate != config.cert_names:
            self._certificate_commands(config)  # start() issues or reissues it as needed
        if config.stage.token:
            self._token_server_commands(config)
        if Registry(config, self.engine).container is not None:
            self.cli(f"docker rm -f -v {config.name}")  # docker run refuses a name in use
        for command in config.folder_commands(self.style):
            self.cli(command)
        self.cli(config.docker_run_command(self.style))
        self.registry = Registry(config, self.engine).start()
        print(f"registry {config.name} answers at {self.registry.url}")
        return self.registry

    def certificate(self, stage: str | Stage = "tls", **kwargs: Any) -> Certificate:
        """Issue (or reuse) the registry's certificate and show what is in it."""
        config = self.config(stage, **kwargs)
        cert = config.paths.certificate_step(config.cert_names, self.style).run(self.cli)
        self.shown_certificate = config.cert_names
        for key, value in cert.describe().items():
            print(f"{key:>18}: {', '.join(value) if isinstance(value, list) else value}")
        return cert

    def mounts(self, registry: Registry) -> list[str]:
        """Where the registry's /var/lib/registry really is: a bind mount, or an anonymous
        volume (the registry image declares VOLUME /var/lib/registry, so the engine makes one)."""
        fmt = (
            "{{range .Mounts}}{{.Type}} {{.Name}}{{.Source}} -> {{.Destination}}{{println}}{{end}}"
        )
        self.cli(f"docker inspect --format '{fmt}' {self.name}")
        container = registry.container
        found = []
        for mount in container.attrs["Mounts"] if container is not None else []:
            where = mount.get("Name") or self.style.show(Path(mount["Source"]))
            found.append(f"{mount['Type']} {where} -> {mount['Destination']}")
            print(found[-1])
        return found

    def _token_server_commands(self, config: RegistryConfig) -> None:
        """The token stage's server: its signing certificate (once), then its container."""
        if not self.shown_signing:  # issued as the lines issue it; the server then reuses it
            config.paths.signing_certificate_step(self.style).run(self.cli)
            self.shown_signing = True
        acl = config.paths.acl
        if not acl.exists():  # the server would start on reglab's example list: typed too
            self.cli(f"mkdir -p {self.style.show(acl.parent)}")
            self.cli(printf_line(DEFAULT_ACL, self.style.show(acl)))
            write_atomic(acl, DEFAULT_ACL.encode(), 0o644)
        server = TokenServer(config, self.engine)
        if server.container is not None:
            self.cli(f"docker rm -f {server.name}")
        self.cli(server.docker_run_command(self.style))

    def _certificate_commands(self, config: RegistryConfig) -> None:
        """The certificate's lines, and a certificate issued as they issue it (for exactly the
        stage's names); Registry.start() then finds it valid."""
        config.paths.certificate_step(config.cert_names, self.style).run(self.cli)
        self.shown_certificate = config.cert_names

    def network(self) -> str:
        """The workshop's own Docker network; return its gateway (a non-loopback address)."""
        # The owner label, as reglab's own: reglab may then reuse and remove it.
        self.cli(f"docker network create --label {OWNER_LABEL}=true {NETWORK}")
        gateway = project_network(self.engine)
        fmt = "'{{(index .IPAM.Config 0).Gateway}}'"
        self.cli(f"GATEWAY=$(docker network inspect --format {fmt} {NETWORK})")
        self.shell_variables[gateway] = "GATEWAY"
        print(f"gateway address of {NETWORK}: {gateway}")
        return gateway

    def trust_ca(self, host: str) -> None:
        """Make Docker trust the workshop CA for HOST:PORT, through the engine (no sudo, no
        daemon restart)."""
        paths = self.config("tls").paths
        trust = EngineTrust(self.engine, host, self.port, paths.trust)
        trust.add(paths.ca_cert, self.style).run(self.cli)
        print(f"Docker now trusts the workshop CA for {trust.name}")

    def untrust_ca(self, host: str) -> None:
        """Remove what :meth:`trust_ca` put in Docker's certs.d for HOST:PORT."""
        paths = self.config("tls").paths
        EngineTrust(self.engine, host, self.port, paths.trust).remove(self.style).run(self.cli)

    def remove_network(self) -> None:
        self.cli(f"docker network rm {NETWORK}")
        removal = remove_project_network(self.engine)
        if not removal:  # kept for a container still on it (a learner's own mirror, say)
            print(removal)

    def add_user(self, credentials: Credentials, cost: int = DEFAULT_COST) -> None:
        """Add the user to auth/htpasswd (or change their password), with bcrypt."""
        paths = self.config("auth").paths
        step = paths.user_step(credentials.user, credentials.password, cost, self.style)
        step.run(self.cli)
        print(f"{credentials.user} is in {paths.htpasswd.name} (bcrypt, cost {cost})")

    def storage(self, repository: str = "hello-world") -> dict[str, Any]:
        """What the persistent registry keeps on disk for ``repository``.

        Blobs live once, by digest, under ``blobs/``; a repository holds only links: to its
        layers (and config) under ``_layers/``, and per tag to its manifest.
        """
        paths = self.config("persistent").paths
        tag = paths.tag_link(repository, "latest")
        self.cli(
            f"find {self.style.show(paths.repository(repository) / '_layers')} -name link | wc -l"
        )
        self.cli(f"find {self.style.show(paths.storage / 'blobs')} -name data | wc -l")
        self.cli(f"cat {self.style.show(tag)}")
        return {
            "repository": repository,
            "layer and config links": len(paths.layer_links(repository)),
            "blob files in the store": len(list((paths.storage / "blobs").rglob("data"))),
            "tag latest": tag.read_text().strip() if tag.exists() else None,
        }

    def tag(self, source: str, target: str) -> None:
        self.cli(f"docker tag {source} {target}")
        transfer.tag(self.engine, source, target)
        if is_local_name(target):  # never clean up hello-world
            self._refs.append(target)

    def track(self, ref: str) -> None:
        """An image name this notebook made otherwise than by ``tag`` (a build): the clean-up
        removes it too."""
        if ref not in self._refs:
            self._refs.append(ref)

    def push(self, ref: str, credentials: Credentials | None = None) -> str:
        return self._transfer("push", ref, credentials)

    def pull(self, ref: str, credentials: Credentials | None = None) -> str:
        return self._transfer("pull", ref, credentials)

    def _transfer(self, action: str, ref: str, credentials: Credentials | None) -> str:
        """``docker push`` or ``docker pull``, with a progress bar; return the digest."""
        self.cli(f"docker {action} {ref}")
        call = transfer.push if action == "push" else transfer.pull
        auth = credentials.auth_config() if credentials else None
        digest = call(self.engine, ref, progress=for_display(action), auth=auth)
        print(f"{action}ed {ref}: digest {digest}")
        if action == "pull" and is_local_name(ref):
            self._refs.append(ref)
        return digest

    def ensure_stored(
        self,
        registry: Registry,
        credentials: Credentials | None = None,
        repository: str = "hello-world",
    ) -> str:
        """The digest of ``repository:latest`` that an earlier stage stored in registry-data.

        When you skipped that stage (or run this notebook alone), it is pushed now, as that
        stage did, so the stages still stack. Returns the digest the registry serves.
        """
        try:
            with registry.client(auth=credentials.as_tuple() if credentials else None) as api:
                return api.manifest_digest(repository)
        except ReglabError:
            pass  # not stored yet
        print(f"{repository} is not in registry-data yet (an earlier notebook was skipped):")
        ref = registry.ref(repository)
        self.tag("hello-world", ref)
        return self.push(ref)

    def rmi(self, *refs: str) -> None:
        self.cli(f"docker rmi {' '.join(refs)}")
        for ref in refs:
            transfer.remove(self.engine, ref)

    def try_push(self, ref: str, credentials: Credentials | None = None) -> str | None:
        """Push, expecting a refusal: show and return the engine's error (None if it worked)."""
        return self._try("push", ref, credentials)

    def try_pull(self, ref: str, credentials: Credentials | None = None) -> str | None:
        """Pull, expecting a refusal: show and return the engine's error (None if it worked)."""
        return self._try("pull", ref, credentials)

    def _try(self, action: str, ref: str, credentials: Credentials | None) -> str | None:
        try:
            self._transfer(action, ref, credentials)
        except ReglabError as exc:
            print(f"refused: {exc.problem}")
            return exc.problem
        return None

    def login(self, credentials: Credentials, registry: Registry | None = None) -> None:
        address = (registry or self._current()).address
        self.cli(login_command(address, credentials.user))
        print(login(self.engine, address, credentials))

    def logout(self, registry: Registry | None = None) -> None:
        address = (registry or self._current()).address
        self.cli(f"docker logout {address}")
        logout(self.engine, address)
        print(f"credentials for {address} removed")

    def _current(self) -> Registry:
        if self.registry is None:
            raise ReglabError("no registry started in this notebook", "run the ws.up(...) cell")
        return self.registry

    def down(self) -> None:
        """Remove the registry container, and with ``-v`` its anonymous volume (where the local
        stage keeps its images); a bind-mounted registry-data/ stays."""
        registry = self._current()
        if registry.config.stage.token:
            self.cli(f"docker rm -f {TokenServer(registry.config, self.engine).name}")
        self.cli(f"docker rm -f -v {self.name}")
        registry.remove()

    def cleanup(self, keep_running: bool = False) -> None:
        """Remove the image names this notebook made (and any name of this registry's address,
        such as one you typed in a terminal) and, unless kept, the registry container.

        Data in the working folder stays: the next stage builds on it.
        """
        ours = (f"127.0.0.1:{self.port}/", f"localhost:{self.port}/")
        typed = [t for image in self.engine.images.list() for t in image.tags if t.startswith(ours)]
        refs = list(dict.fromkeys([*self._refs, *sorted(typed)]))
        if refs:
            self.cli(image_names_removal(refs))
        for ref in refs:
            transfer.remove(self.engine, ref)
        self._refs.clear()
        if self.registry is None:
            return
        if keep_running:
            print(f"registry {self.name} keeps running at {self.registry.url}")
            return
        self.down()
        if self.registry.config.data_volume:
            volume = self.registry.config.data_volume
            print(f"registry {self.name} removed; its data is on the volume {volume}")
        elif self.registry.config.stage.persistent:
            data = self.style.show(self.registry.config.paths.data)
            print(f"registry {self.name} removed; its data stays in {data}")
        else:
            print(f"registry {self.name} removed, and its images with its anonymous volume")
