"""The signature gate, as a container in front of a registry (``NAME-gate``).

The gate itself is :mod:`reglab.auth.gate` (the one file the ``reglab-gate`` image runs). This
module starts it, waits until it answers, and removes it; like the token server, it keeps
running after the command that started it. It reads two folders of the working folder
(:class:`reglab.registry.simplesign.SignFiles`), mounted read-only::

    sign/lookaside/          the signatures (skopeo writes them there: reglab sign)
    sign/trust/trusted.gpg   the GnuPG keys it trusts, and cosign.pub cosign's: replaced in
                             place, they are read at each request

It shares this machine's network (``--network host``) and listens on ``127.0.0.1`` only, at
the registry's port + 6 (:mod:`reglab.base.ports`): the registry publishes its port on
``127.0.0.1``, where only a process of this machine reaches it, and the Docker engine speaks
plain HTTP to any ``127.0.0.1`` address, so ``docker pull 127.0.0.1:5006/app:1`` goes through
the gate with no daemon setting. The registry it fronts therefore speaks plain HTTP: the
local and persistent stages.
"""

from __future__ import annotations

import docker
import docker.errors

from reglab.base.errors import ConfigError, PortInUse, RegistryError, docker_errors
from reglab.base.labels import owner_labels
from reglab.base.ports import Ports
from reglab.base.settings import GATE_IMAGE
from reglab.base.shell import PathStyle
from reglab.engine.connection import port_problem
from reglab.engine.spec import INVOKER, ContainerSpec, Mount
from reglab.engine.transfer import exists
from reglab.registry.client import probe_status
from reglab.registry.companion import Companion, remove_owned
from reglab.registry.config import RegistryConfig
from reglab.registry.simplesign import SignFiles


def gate_name(registry_name: str) -> str:
    return f"{registry_name}-gate"


def remove_gate(engine: docker.DockerClient, registry_name: str) -> bool:
    """Remove the gate of the registry ``registry_name`` if there is one (reglab's only);
    True when one went."""
    return remove_owned(engine, gate_name(registry_name))


class Gate(Companion):
    """The signature gate of one plain-HTTP registry."""

    what = "the gate"

    def __init__(
        self,
        config: RegistryConfig,
        engine: docker.DockerClient,
        immutable: tuple[str, ...] = (),
    ) -> None:
        if config.stage.tls:
            raise ConfigError(
                f"the gate fronts a plain-HTTP registry, not the {config.stage.value} stage",
                "reglab up local --require-signed KEY (or persistent)",
            )
        for pattern in immutable:
            if ":" not in pattern:
                raise ConfigError(
                    f"--immutable {pattern!r} names no tag",
                    "give REPOSITORY:TAG patterns, such as 'prod/*:v*'",
                )
        super().__init__(engine, gate_name(config.name))
        self.config = config
        self.immutable = immutable
        self.files = SignFiles.of(config.workdir)
        self.port = Ports(config.port).gate

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def spec(self) -> ContainerSpec:
        """The gate's container, run by reglab and shown as its ``docker run`` line. It runs
        as the user, who owns the folders it reads."""
        arguments = [
            "--listen", self.address, "--upstream", f"http://127.0.0.1:{self.config.port}",
            "--lookaside", "/lookaside", "--keyring", "/trust/trusted.gpg",
            "--cosign-keys", "/trust/cosign.pub",
        ]  # fmt: skip
        for pattern in self.immutable:
            arguments += ["--immutable", pattern]
        return ContainerSpec(
            GATE_IMAGE,
            tuple(arguments),
            name=self.name,
            labels=owner_labels(),
            mounts=(
                Mount(self.files.lookaside, "/lookaside", read_only=True),
                Mount(self.files.trust, "/trust", read_only=True),
            ),
            user=INVOKER,
            network="host",
            wrap=True,
        )

    def docker_run_command(self, style: PathStyle | None = None) -> str:
        return self.spec().shell(style)

    def start(self, timeout: float = 30.0) -> Gate:
        """Start (or replace) the gate; return once a request through it reaches the
        registry. The trusted keys must be in place (:func:`.signing.trust_step`)."""
        if not (self.files.trusted.is_file() or self.files.cosign_keys.is_file()):
            raise ConfigError(
                f"the gate has no trusted keys (nothing in {self.files.trust})",
                "reglab up local --require-signed PUBLIC-KEY-FILE",
            )
        self.remove()
        problem = port_problem(self.engine, self.port)
        if problem:
            raise PortInUse(
                f"the gate's port {self.port} is in use ({problem.what})",
                "choose another registry port (the gate takes the registry's + 6)",
            )
        if not exists(self.engine, GATE_IMAGE):
            raise RegistryError(
                f"image {GATE_IMAGE} is not present", "run 'reglab images --stage supply'"
            )
        self.files.lookaside.mkdir(parents=True, exist_ok=True)
        with docker_errors("the gate could not start", error=RegistryError):
            self.engine.containers.run(**self.spec().run_kwargs())
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``GET /v2/`` through the gate until the registry's answer comes back."""
        self.wait_answering(self.url, lambda: probe_status(f"{self.url}/v2/"), (200, 401), timeout)

    def denials(self, tail: int = 50) -> list[str]:
        """What the gate refused lately, as its log says (``denied: ...`` lines)."""
        return [
            line.split("denied: ", 1)[1]
            for line in self.logs(tail).splitlines()
            if "denied: " in line
        ]


__all__ = ["Gate", "gate_name", "remove_gate"]
